/**
 * `GET /api/v1/metrics`: the control plane's view of the fleet in the Prometheus text format
 * (docs/metrics.md), for operators (any role). Built from the store on each scrape: disks by
 * state, their lag and backlog, active alerts, running jobs, process servers' spools and the
 * age of each server's last heartbeat, plus the requests this instance answered.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { METRICS_CONTENT_TYPE, renderMetrics, type MetricFamily, type MetricSample } from '../../core/metrics.ts';
import type { Context } from '../deps.ts';
import { ForbiddenError, UnauthenticatedError } from '../errors.ts';
import { listItems } from '../domain/lookup.ts';
import { listVaults } from '../domain/vaults.ts';
import { Alert, Job, Machine, Server } from '../domain/records.ts';
import type { AppEnv } from './env.ts';

const P = 'tidemark_control_plane_';

/** Requests answered by this instance, by status class; counted by `countRequests`. */
const requests = new Map<string, number>();

export function registerMetricsRoutes(api: OpenAPIHono<AppEnv>, ctx: Context): void {
  api.use(async (c, next) => {
    await next();
    const k = `${Math.floor(c.res.status / 100)}xx`;
    requests.set(k, (requests.get(k) ?? 0) + 1);
  });
  api.get('/metrics', async (c) => {
    const p = c.get('principal');
    if (!p) throw new UnauthenticatedError('missing credential', { hint: 'send Authorization: Bearer <operator token>' });
    if (p.kind !== 'operator') throw new ForbiddenError('only operators may read metrics');
    return c.body(renderMetrics(await fleetMetrics(ctx)), 200, { 'content-type': METRICS_CONTENT_TYPE });
  });
}

async function fleetMetrics(ctx: Context): Promise<MetricFamily[]> {
  const nowMs = ctx.now();
  const disksByState: MetricSample[] = [];
  const lag: MetricSample[] = [];
  const backlog: MetricSample[] = [];
  const alerts: MetricSample[] = [];
  const jobs: MetricSample[] = [];
  const spoolUsed: MetricSample[] = [];
  const spoolLimit: MetricSample[] = [];
  const heartbeatAge: MetricSample[] = [];
  for (const v of await listVaults(ctx)) {
    const vault = v.id;
    const counts = new Map<string, number>();
    for (const m of await listItems(ctx, vault, 'machines', Machine)) {
      if (!m.protection) continue;
      for (const d of m.disks) {
        counts.set(d.state ?? 'UNKNOWN', (counts.get(d.state ?? 'UNKNOWN') ?? 0) + 1);
        const labels = { vault, machine: m.name, disk: d.name };
        if (d.lagSeconds !== null) lag.push({ labels, value: d.lagSeconds });
        if (d.backlogBytes !== null) backlog.push({ labels, value: d.backlogBytes });
      }
    }
    for (const [state, n] of counts) disksByState.push({ labels: { vault, state }, value: n });
    const activeAlerts = new Map<string, number>();
    for (const a of await listItems(ctx, vault, 'alerts', Alert)) if (a.state === 'active') activeAlerts.set(a.kind, (activeAlerts.get(a.kind) ?? 0) + 1);
    for (const [kind, n] of activeAlerts) alerts.push({ labels: { vault, kind }, value: n });
    const running = (await listItems(ctx, vault, 'jobs', Job)).filter((j) => j.state === 'running').length;
    jobs.push({ labels: { vault }, value: running });
    for (const s of await listItems(ctx, vault, 'servers', Server)) {
      const labels = { vault, server: s.name, role: s.role };
      if (s.lastHeartbeatAt) heartbeatAge.push({ labels, value: Math.max(0, (nowMs - Date.parse(s.lastHeartbeatAt)) / 1000) });
      if (s.spool) {
        spoolUsed.push({ labels, value: s.spool.usedBytes });
        spoolLimit.push({ labels, value: s.spool.limitBytes ?? Infinity });
      }
    }
  }
  return [
    { name: `${P}protected_disks`, type: 'gauge', help: 'Protected disks by stream state.', samples: disksByState },
    { name: `${P}disk_lag_seconds`, type: 'gauge', help: 'Lag of each protected disk as last reported.', samples: lag },
    { name: `${P}disk_backlog_bytes`, type: 'gauge', help: 'Backlog of each protected disk as last reported.', samples: backlog },
    { name: `${P}alerts_active`, type: 'gauge', help: 'Active alerts by kind.', samples: alerts },
    { name: `${P}jobs_running`, type: 'gauge', help: 'Jobs (failovers, test failovers, cleanups) running.', samples: jobs },
    { name: `${P}server_heartbeat_age_seconds`, type: 'gauge', help: 'Time since each server\'s last heartbeat.', samples: heartbeatAge },
    { name: `${P}spool_used_bytes`, type: 'gauge', help: 'Process servers\' whole spool in use, as last reported.', samples: spoolUsed },
    { name: `${P}spool_limit_bytes`, type: 'gauge', help: 'Process servers\' whole-spool limit (+Inf when none).', samples: spoolLimit },
    { name: `${P}requests_total`, type: 'counter', help: 'API requests answered by this instance, by status class.', samples: [...requests].map(([status, value]) => ({ labels: { status }, value })) },
  ];
}
