/**
 * A bounded history of each machine's replication health, kept for the console's charts and
 * recovery-point timeline. It is recorded from the heartbeats process servers and master
 * targets send (`POST /site/heartbeat`), after the API accepted them:
 *
 * - `hour`: one sample per 10 s bucket for the last hour;
 * - `day`: one sample per 5 min bucket for the last day;
 * - `points`: the last recovery points heartbeats reported (`latestPoint` of each disk), newest last.
 *
 * A sample is the machine's worst lag (its RPO now), its total backlog, and the changes applied
 * in the bucket (the advance of each disk's latest point sequence; heartbeats carry no byte
 * counters). One object per machine: `v1/console/<vaultId>/machine-history/<machineId>.json`,
 * format version 1 of docs/console.md.
 */
import { z } from '@hono/zod-openapi';
import type { Heartbeat } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { isId } from '../domain/ids.ts';
import { keys } from '../domain/keys.ts';
import { Machine } from '../domain/records.ts';
import { ConflictError } from '../errors.ts';
import { checkObjectKey } from '../store/object-store.ts';

export const HOUR_BUCKET_SECONDS = 10;
export const DAY_BUCKET_SECONDS = 300;
/** Recovery points kept per machine. */
export const MAX_HISTORY_POINTS = 200;

export const HistorySample = z.object({
  t: z.string().describe('start of the bucket, ISO 8601'),
  lagSeconds: z.number().nonnegative().describe('the worst lag of any disk reported in the bucket'),
  backlogBytes: z.number().int().nonnegative().describe('the largest total backlog reported in the bucket'),
  changes: z.number().int().nonnegative().describe('changes applied in the bucket (advance of the latest point sequences)'),
}).openapi('HistorySample');
export type HistorySample = z.infer<typeof HistorySample>;

export const HistoryPoint = z.object({
  diskId: z.string(),
  time: z.string(),
  seq: z.number().int().nonnegative().nullable(),
  kind: z.enum(['crash-consistent', 'app-consistent', 'group', 'bookmark']),
}).openapi('HistoryPoint');
export type HistoryPoint = z.infer<typeof HistoryPoint>;

export const MachineHistory = z.object({
  vaultId: z.string(),
  machineId: z.string(),
  lastSeq: z.record(z.string(), z.number()).describe('per disk: the latest point sequence seen'),
  hour: z.array(HistorySample),
  day: z.array(HistorySample),
  points: z.array(HistoryPoint),
}).openapi('MachineHistory');
export type MachineHistory = z.infer<typeof MachineHistory>;

export function historyKey(vaultId: string, machineId: string): string {
  return checkObjectKey(`v1/console/${vaultId}/machine-history/${machineId}.json`);
}

function bucketStart(ms: number, seconds: number): string {
  return new Date(Math.floor(ms / (seconds * 1000)) * seconds * 1000).toISOString();
}

/** Adds `s` to `series` (merging into the bucket it falls in) and drops buckets older than `keepSeconds`. */
function addSample(series: HistorySample[], s: HistorySample, nowMs: number, keepSeconds: number): HistorySample[] {
  const out = series.filter((x) => Date.parse(x.t) > nowMs - keepSeconds * 1000);
  const last = out[out.length - 1];
  if (last && last.t === s.t) {
    out[out.length - 1] = {
      t: s.t,
      lagSeconds: Math.max(last.lagSeconds, s.lagSeconds),
      backlogBytes: Math.max(last.backlogBytes, s.backlogBytes),
      changes: last.changes + s.changes,
    };
  } else {
    out.push(s);
  }
  return out;
}

type DiskReport = Heartbeat['disks'][number];

/** The history after one heartbeat's reports of one machine. Pure. */
export function applyReports(h: MachineHistory, reports: DiskReport[], nowMs: number): MachineHistory {
  const lastSeq = { ...h.lastSeq };
  let changes = 0;
  const points = [...h.points];
  for (const r of reports) {
    const seq = r.latestPoint?.seq;
    if (seq !== undefined) {
      const before = lastSeq[r.diskId];
      if (before !== undefined && seq > before) changes += seq - before;
      if (before === undefined || seq > before) lastSeq[r.diskId] = seq;
    }
    const p = r.latestPoint;
    if (p && !points.some((x) => x.diskId === r.diskId && x.time === p.time && x.seq === (p.seq ?? null))) {
      points.push({ diskId: r.diskId, time: p.time, seq: p.seq ?? null, kind: p.kind ?? 'crash-consistent' });
    }
  }
  points.sort((a, b) => a.time.localeCompare(b.time));
  const lagSeconds = Math.max(0, ...reports.map((r) => r.lagSeconds));
  const backlogBytes = reports.reduce((sum, r) => sum + r.backlogBytes, 0);
  const sample = (seconds: number): HistorySample => ({ t: bucketStart(nowMs, seconds), lagSeconds, backlogBytes, changes });
  return {
    ...h,
    lastSeq,
    hour: addSample(h.hour, sample(HOUR_BUCKET_SECONDS), nowMs, 3600),
    day: addSample(h.day, sample(DAY_BUCKET_SECONDS), nowMs, 86400),
    points: points.slice(-MAX_HISTORY_POINTS),
  };
}

/**
 * Records one accepted heartbeat of server `serverId`: only disks of machines whose
 * protection names that server count (the rule the heartbeat consumer applies).
 */
export async function recordHeartbeat(ctx: Context, vaultId: string, serverId: string, hb: Heartbeat): Promise<void> {
  const byMachine = new Map<string, DiskReport[]>();
  for (const d of hb.disks) byMachine.set(d.machineId, [...(byMachine.get(d.machineId) ?? []), d]);
  for (const [machineId, reports] of byMachine) {
    if (!isId('machine', machineId)) continue;
    const machine = await ctx.repo.get(keys.item(vaultId, 'machines', machineId), Machine);
    const p = machine?.protection;
    if (!machine || !p || (p.processServerId !== serverId && p.masterTargetId !== serverId)) continue;
    const own = reports.filter((r) => machine.disks.some((d) => d.id === r.diskId));
    if (own.length === 0) continue;
    const key = historyKey(vaultId, machineId);
    const updated = await ctx.repo.update(key, MachineHistory, (h) => applyReports(h, own, ctx.now()));
    if (updated) continue;
    const empty: MachineHistory = { vaultId, machineId, lastSeq: {}, hour: [], day: [], points: [] };
    try {
      await ctx.repo.create(key, applyReports(empty, own, ctx.now()));
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      await ctx.repo.update(key, MachineHistory, (h) => applyReports(h, own, ctx.now()));
    }
  }
}

/** The machine's history, empty if nothing was recorded yet; samples older than the window are dropped. */
export async function readHistory(ctx: Context, vaultId: string, machineId: string): Promise<MachineHistory> {
  const h = await ctx.repo.get(historyKey(vaultId, machineId), MachineHistory);
  const nowMs = ctx.now();
  if (!h) return { vaultId, machineId, lastSeq: {}, hour: [], day: [], points: [] };
  return {
    ...h,
    hour: h.hour.filter((s) => Date.parse(s.t) > nowMs - 3600_000),
    day: h.day.filter((s) => Date.parse(s.t) > nowMs - 86400_000),
  };
}
