/**
 * What sites report — heartbeats with per-disk metrics, and job events — travels through the
 * site-events queue: the API validates and enqueues (so a burst of reports never contends on
 * the store), and a consumer (`lambda/site-events.ts` in AWS, a loop in `local.ts`) applies.
 * The message format is version 1 of docs/control-plane-api.md.
 */
import type { Heartbeat, JobEvent } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { evaluateMachineAlerts } from './alerts.ts';
import { advanceDrill } from './drills.ts';
import { applyJobEvent } from './jobs.ts';
import { isId } from './ids.ts';
import type { ReceivedMessage } from '../queue/message-queue.ts';
import { keys } from './keys.ts';
import { Machine, Policy, Server } from './records.ts';

export const SITE_EVENT_FORMAT_VERSION = 1;
/** A received report not applied within this long is offered again. */
export const SITE_EVENT_VISIBILITY_SECONDS = 60;

export type SiteEventMessage =
  | { v: 1; kind: 'heartbeat'; vaultId: string; serverId: string; receivedAt: string; heartbeat: Heartbeat }
  | { v: 1; kind: 'job-events'; vaultId: string; serverId: string; receivedAt: string; events: JobEvent[] };

export async function enqueueHeartbeat(ctx: Context, vaultId: string, serverId: string, heartbeat: Heartbeat): Promise<void> {
  const msg: SiteEventMessage = { v: 1, kind: 'heartbeat', vaultId, serverId, receivedAt: nowIso(ctx), heartbeat };
  await ctx.siteEvents.send(JSON.stringify(msg));
}

export async function enqueueJobEvents(ctx: Context, vaultId: string, serverId: string, events: JobEvent[]): Promise<void> {
  const msg: SiteEventMessage = { v: 1, kind: 'job-events', vaultId, serverId, receivedAt: nowIso(ctx), events };
  await ctx.siteEvents.send(JSON.stringify(msg));
}

/** Parses a queue message body; throws on an unknown version or shape (it then dead-letters). */
export function parseSiteEvent(body: string): SiteEventMessage {
  const msg = JSON.parse(body) as SiteEventMessage;
  if (msg?.v !== SITE_EVENT_FORMAT_VERSION) throw new Error(`site event has unknown format version ${String(msg?.v)}`);
  if (!isId('vault', msg.vaultId) || !isId('server', msg.serverId)) throw new Error('site event names no valid vault and server');
  return msg;
}

export async function applySiteEvent(ctx: Context, msg: SiteEventMessage): Promise<void> {
  if (msg.kind === 'heartbeat') return applyHeartbeat(ctx, msg.vaultId, msg.serverId, msg.receivedAt, msg.heartbeat);
  for (const e of msg.events) {
    const outcome = await applyJobEvent(ctx, msg.vaultId, msg.serverId, e);
    if (!outcome.applied) {
      ctx.log.warn('job event ignored', { vaultId: msg.vaultId, serverId: msg.serverId, jobId: e.jobId, reason: outcome.reason });
    } else if (outcome.job.state !== 'running' && outcome.job.drillId) {
      await advanceDrill(ctx, msg.vaultId, outcome.job.drillId);
    }
  }
}

async function applyHeartbeat(ctx: Context, vaultId: string, serverId: string, receivedAt: string, hb: Heartbeat): Promise<void> {
  const server = await ctx.repo.update(keys.item(vaultId, 'servers', serverId), Server, (s) => ({
    ...s, lastHeartbeatAt: receivedAt, softwareVersion: hb.softwareVersion ?? s.softwareVersion, ...(hb.spool ? { spool: hb.spool } : {}),
  }));
  if (hb.spool && server && server.before?.spool?.level !== hb.spool.level) {
    (hb.spool.level === 'ok' ? ctx.log.info : ctx.log.warn).call(ctx.log, 'process server spool level changed', {
      vaultId, serverId, level: hb.spool.level, previous: server.before?.spool?.level ?? 'ok', usedBytes: hb.spool.usedBytes, limitBytes: hb.spool.limitBytes,
    });
  }
  const byMachine = new Map<string, Heartbeat['disks']>();
  for (const d of hb.disks) byMachine.set(d.machineId, [...(byMachine.get(d.machineId) ?? []), d]);
  for (const [machineId, reports] of byMachine) {
    if (!isId('machine', machineId)) continue;
    let refused = false;
    const r = await ctx.repo.update(keys.item(vaultId, 'machines', machineId), Machine, (m) => {
      const p = m.protection;
      refused = !p || (p.processServerId !== serverId && p.masterTargetId !== serverId);
      if (refused) return m;
      return {
        ...m,
        disks: m.disks.map((disk) => {
          const rep = reports.find((x) => x.diskId === disk.id);
          if (!rep) return disk;
          return {
            ...disk, state: rep.state, lagSeconds: rep.lagSeconds, backlogBytes: rep.backlogBytes,
            latestPoint: rep.latestPoint ?? disk.latestPoint, reportedAt: receivedAt,
          };
        }),
      };
    });
    if (!r || refused) {
      ctx.log.warn('disk report ignored: machine not assigned to this server', { vaultId, serverId, machineId });
      continue;
    }
    const policy = await ctx.repo.get(keys.item(vaultId, 'policies', r.after.protection!.policyId), Policy);
    if (policy) await evaluateMachineAlerts(ctx, r.after, policy);
  }
}

/**
 * Applies received site-event messages and acknowledges each one that applied. A message
 * that fails is left for redelivery and, after repeated failures, dead-letters.
 */
export async function applyReceivedSiteEvents(ctx: Context, messages: ReceivedMessage[]): Promise<void> {
  for (const m of messages) {
    try {
      await applySiteEvent(ctx, parseSiteEvent(m.body));
      await ctx.siteEvents.delete(m.receipt);
    } catch (err) {
      ctx.log.error('site event failed', { messageId: m.messageId, receiveCount: m.receiveCount, error: err as Error });
    }
  }
}

/** Receives and applies site events until the queue is empty or `maxMessages` were handled. */
export async function drainSiteEvents(ctx: Context, options: { maxMessages?: number; signal?: AbortSignal } = {}): Promise<number> {
  const max = options.maxMessages ?? 1000;
  let handled = 0;
  while (handled < max) {
    const batch = await ctx.siteEvents.receive({ maxMessages: 10, visibilityTimeoutSeconds: SITE_EVENT_VISIBILITY_SECONDS, signal: options.signal });
    if (batch.length === 0) break;
    await applyReceivedSiteEvents(ctx, batch);
    handled += batch.length;
  }
  return handled;
}
