/**
 * Turning an operator's `at` (latest, a point id, or an ISO time) into a recovery point of one
 * disk stream, honouring the retention tiers: a point the tiers dropped cannot be chosen.
 */
import { TidemarkError, UsageError } from '../../core/errors.ts';
import type { DiskStream } from '../disk-stream.ts';
import type { Point } from '../points.ts';
import { isKept, type TierPolicy } from '../retention-tiers.ts';

/** No such point (or no data yet). */
export class PointNotFoundError extends TidemarkError {}

export interface PointRules {
  tiers: TierPolicy;
  now: () => number;
}

/** The point of `stream` that `at` names; an ISO time picks the newest kept point at or before it. */
export function resolvePoint(stream: DiskStream, at: string, rules: PointRules): Point {
  const appliedSeq = stream.nextSeq - 1;
  const where = `${stream.machine}/${stream.disk}`;
  const hint = `list valid points with 'tidemark points --machine ${stream.machine} --disk ${stream.disk}', or use latest`;
  if (at === 'latest') {
    if (appliedSeq < 1) throw new PointNotFoundError(`disk ${where} has no data yet`, { hint: 'wait for the first batch to arrive' });
    return stream.points.pointAt(appliedSeq) ?? { id: String(appliedSeq), seq: appliedSeq, time: new Date(rules.now()).toISOString(), kind: 'crash', consistent: true };
  }
  if (/^\d{1,15}$/.test(at)) {
    const seq = Number(at);
    const p = seq >= stream.oldestSeq && seq <= appliedSeq ? stream.points.pointAt(seq) : undefined;
    if (!p || !isKept(p, stream.points, rules.now(), rules.tiers)) throw new PointNotFoundError(`no recovery point ${at} for disk ${where}`, { hint });
    return p;
  }
  const timeMs = Date.parse(at);
  if (!Number.isFinite(timeMs)) throw new UsageError(`at must be latest, a point id or an ISO 8601 time, got ${JSON.stringify(at)}`, { hint });
  const p = newestKeptAtOrBefore(stream, timeMs, rules);
  if (!p) throw new PointNotFoundError(`no recovery point at or before ${new Date(timeMs).toISOString()} for disk ${where}`, { hint });
  return p;
}

/** The newest point at or before `timeMs` that the tiers keep and the journal still holds. */
export function newestKeptAtOrBefore(stream: DiskStream, timeMs: number, rules: PointRules): Point | undefined {
  const appliedSeq = stream.nextSeq - 1;
  const nowMs = rules.now();
  let t = timeMs;
  // Each step moves to an older bucket; a handful of steps at most in practice.
  for (let i = 0; i < 10_000; i++) {
    const p = stream.points.newestAtOrBefore(t);
    if (!p || p.seq < stream.oldestSeq) return undefined;
    if (p.seq <= appliedSeq && isKept(p, stream.points, nowMs, rules.tiers)) return p;
    t = Date.parse(p.time) - 1;
  }
  return undefined;
}
