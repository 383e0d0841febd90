// The dashboard: totals, RPO and throughput charts, and every machine with its health.
import { get } from '../api.js';
import { h, replace, replaceIfChanged } from '../dom.js';
import { chartWidth, lineChart, windowToggle } from '../charts.js';
import { ago, axisSeconds, bytes, seconds } from '../format.js';
import { alertBadge, errorBox, loadFleet, machineLag, machineState, rpoBadge, stateBadge } from '../common.js';

const REFRESH_MS = 2000;
let chartWindow = 'hour';

export async function renderDashboard(root, ctx) {
  if (!ctx.vault) {
    replace(root, h('h1', {}, 'Dashboard'), h('p', {}, 'There is no vault yet. ',
      ctx.can('admin') ? h('a', { href: '#/enroll' }, 'Create one under Enrollment.') : 'Ask an admin to create one.'));
    return;
  }
  const totals = h('section', { 'aria-labelledby': 'totals-title', class: 'totals-box' }, h('h2', { id: 'totals-title', class: 'visually-hidden' }, 'Totals'));
  const totalsBody = h('div');
  totals.append(totalsBody);
  const charts = h('div', { class: 'charts' });
  const machines = h('div');
  const alerts = h('div');
  replace(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Replication health'), h('p', { class: 'sub' }, `Vault ${ctx.vault.name}`)),
    totals,
    h('section', { 'aria-labelledby': 'charts-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'charts-title' }, 'History'),
        windowToggle(chartWindow, (w) => { chartWindow = w; charts.dataset.renderKey = ''; load(); }, 'Chart window')),
      charts),
    h('section', { 'aria-labelledby': 'machines-title' }, h('h2', { id: 'machines-title' }, 'Machines'), machines),
    h('section', { 'aria-labelledby': 'alerts-title' }, h('h2', { id: 'alerts-title' }, 'Active alerts'), alerts));

  const load = async () => {
    let fleet;
    let history;
    try {
      [fleet, history] = await Promise.all([loadFleet(ctx.vault.id), get(`/vaults/${ctx.vault.id}/history`)]);
    } catch (err) {
      replace(machines, errorBox(err));
      return;
    }
    const nowMs = Date.now();
    const policies = new Map(fleet.policies.map((p) => [p.id, p]));
    const protectedMachines = fleet.machines.filter((m) => m.protection);
    const thresholdOf = (m) => policies.get(m.protection?.policyId)?.rpoThresholdSeconds ?? null;
    const inResync = protectedMachines.filter((m) => m.disks.some((d) => d.state === 'RESYNC')).length;
    const over = protectedMachines.filter((m) => machineLag(m) !== null && thresholdOf(m) !== null && machineLag(m) > thresholdOf(m)).length;
    const total = (label, value, tone, id) => h('div', { class: `total ${tone}` }, h('span', { class: 'value', id }, String(value)), h('span', { class: 'label' }, label));
    replaceIfChanged(totalsBody, JSON.stringify([protectedMachines.length, fleet.machines.length, inResync, over, fleet.alerts.length]), () =>
      h('div', { class: 'totals' },
        total(`machines protected (of ${fleet.machines.length})`, protectedMachines.length, 'neutral', 'total-protected'),
        total('in resync', inResync, inResync ? 'warn' : 'good', 'total-resync'),
        total('over RPO threshold', over, over ? 'bad' : 'good', 'total-over'),
        total('active alerts', fleet.alerts.length, fleet.alerts.length ? 'bad' : 'good', 'total-alerts')));

    const windowMs = chartWindow === 'hour' ? 3600_000 : 86400_000;
    const bucketMs = chartWindow === 'hour' ? 10_000 : 300_000;
    const worst = new Map();
    const changes = new Map();
    for (const mh of history.items) {
      for (const s of mh[chartWindow]) {
        const t = Date.parse(s.t);
        worst.set(t, Math.max(worst.get(t) ?? 0, s.lagSeconds));
        changes.set(t, (changes.get(t) ?? 0) + s.changes);
      }
    }
    const strictest = Math.min(...protectedMachines.map(thresholdOf).filter((v) => v !== null));
    const lagPoints = [...worst].map(([t, v]) => ({ t, v }));
    const ratePoints = [...changes].map(([t, v]) => ({ t, v: (v * 60_000) / bucketMs }));
    const maxLag = Math.max(0, ...lagPoints.map((p) => p.v));
    const sumChanges = [...changes.values()].reduce((a, b) => a + b, 0);
    const label = chartWindow === 'hour' ? 'last hour' : 'last day';
    replaceIfChanged(charts, JSON.stringify([chartWindow, lagPoints, ratePoints, Math.floor(nowMs / 30_000)]), () => [
      lineChart({
        title: `RPO of the worst machine, ${label}`,
        series: [{ name: 'worst lag', cls: 's1', points: lagPoints }],
        fromMs: nowMs - windowMs, toMs: nowMs, format: axisSeconds, width: chartWidth(charts),
        threshold: Number.isFinite(strictest) ? { value: strictest, label: `threshold ${seconds(strictest)}` } : undefined,
        summary: lagPoints.length ? `Highest lag ${seconds(maxLag)}${Number.isFinite(strictest) ? `, threshold ${seconds(strictest)}` : ''}.` : 'No reports yet.',
      }),
      lineChart({
        title: `Throughput: changes applied per minute, ${label}`,
        series: [{ name: 'changes per minute, all machines', cls: 's2', points: ratePoints }],
        fromMs: nowMs - windowMs, toMs: nowMs, width: chartWidth(charts), format: (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v))),
        summary: ratePoints.length ? `${sumChanges} changes applied in the ${label}.` : 'No reports yet.',
      }),
    ]);

    const rows = fleet.machines.map((m) => {
      const lag = machineLag(m);
      const backlog = m.disks.reduce((s, d) => s + (d.backlogBytes ?? 0), 0);
      const mAlerts = fleet.alerts.filter((a) => a.machineId === m.id);
      const policy = policies.get(m.protection?.policyId);
      return { m, lag, backlog, mAlerts, policy, state: machineState(m) };
    });
    replaceIfChanged(machines, JSON.stringify([rows.map((r) => [r.m, r.mAlerts.map((a) => a.id)]), Math.floor(nowMs / 10_000)]), () =>
      rows.length === 0
        ? h('p', {}, 'No machine has enrolled yet. ', h('a', { href: '#/enroll' }, 'Enroll one.'))
        : h('table', { class: 'data responsive', id: 'machines-table' },
          h('caption', { class: 'visually-hidden' }, 'Machines, their stream state, RPO against the policy threshold, backlog and alerts'),
          h('thead', {}, h('tr', {}, ['Machine', 'State', 'RPO (lag of threshold)', 'Backlog', 'Latest point', 'Alerts'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, rows.map((r) => h('tr', { 'data-machine': r.m.name },
            h('th', { scope: 'row', 'data-label': 'Machine' }, h('a', { href: `#/machines/${r.m.id}` }, r.m.name), h('span', { class: 'muted block' }, r.m.hostname)),
            h('td', { 'data-label': 'State', class: 'state-cell' }, r.m.protection ? stateBadge(r.state) : h('span', { class: 'badge none' }, 'not protected')),
            h('td', { 'data-label': 'RPO' }, r.m.protection ? rpoBadge(r.lag, r.policy?.rpoThresholdSeconds) : '—'),
            h('td', { 'data-label': 'Backlog' }, r.m.protection ? bytes(r.backlog) : '—'),
            h('td', { 'data-label': 'Latest point' }, latestPointText(r.m, nowMs)),
            h('td', { 'data-label': 'Alerts' }, r.mAlerts.length ? h('span', { class: 'badge bad' }, `${r.mAlerts.length} active`) : h('span', { class: 'muted' }, 'none')))))));

    replaceIfChanged(alerts, JSON.stringify(fleet.alerts.map((a) => [a.id, a.message])), () =>
      fleet.alerts.length === 0
        ? h('p', { class: 'muted' }, 'No active alerts.')
        : h('ul', { class: 'alerts' }, fleet.alerts.map((a) => {
          const m = fleet.machines.find((x) => x.id === a.machineId);
          return h('li', { class: 'alert' }, alertBadge(a.kind), ' ',
            h('a', { href: `#/machines/${a.machineId}` }, m?.name ?? a.machineId), ': ', a.message, ' ',
            h('span', { class: 'muted' }, `raised ${ago(a.raisedAt)}`));
        })));
  };
  await load();
  ctx.every(REFRESH_MS, load);
}

function latestPointText(m, nowMs) {
  const points = m.disks.map((d) => d.latestPoint).filter(Boolean);
  if (points.length === 0) return h('span', { class: 'muted' }, '—');
  const oldest = points.reduce((a, b) => (a.time < b.time ? a : b));
  return ago(oldest.time, nowMs);
}
