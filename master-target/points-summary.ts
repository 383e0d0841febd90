/**
 * A compact account of the points one disk stream keeps (`GET …/points/summary`), for the
 * control plane's recovery-point timeline: the oldest and newest kept points, the retention
 * tiers that thin the points in between, the newest points and the newest marked ones
 * (app-consistent, group, bookmark). A busy tap-mode disk has a point at every write: listing
 * them all is not an option, and any time in the kept range names a point anyway.
 */
import type { DiskStream } from './disk-stream.ts';
import type { Point } from './points.ts';
import { isKept, MINUTE_TIER_SECONDS, thin, type TierPolicy } from './retention-tiers.ts';

export interface PointsSummary {
  appliedSeq: number;
  oldest: Point | null;
  newest: Point | null;
  tiers: { fullSeconds: number | null; minuteTierSeconds: number };
  /** Newest first. */
  recent: Point[];
  /** Newest first. */
  marked: Point[];
  /**
   * When space limits last deleted a segment of this stream inside the retention window
   * (since the process started): the kept range may be shorter than the window.
   */
  shortenedForSpaceTime?: string;
}

export interface SummaryOptions {
  tiers?: TierPolicy;
  nowMs: number;
  /** The retention window's start. */
  cutoffMs: number;
  recentLimit: number;
  markedLimit: number;
}

/** Candidates looked at to find kept points among thinned ones. */
const SCAN_FACTOR = 4;

export function pointsSummary(stream: DiskStream, o: SummaryOptions): PointsSummary {
  const appliedSeq = stream.nextSeq - 1;
  const tiers: TierPolicy = o.tiers ?? { fullSeconds: Number.POSITIVE_INFINITY };
  const cache = new Map<string, number | undefined>();
  // The oldest kept point (the listing starts with the newest point before the window, which covers its start).
  const listed = stream.points.list({ sinceSeq: stream.oldestSeq - 1, limit: 64, notBeforeMs: o.cutoffMs }).filter((p) => p.seq <= appliedSeq);
  const first = thin(listed, stream.points, o.nowMs, tiers)[0];
  const keep = (p: Point) => first !== undefined && p.seq >= first.seq && isKept(p, stream.points, o.nowMs, tiers, cache);
  const pick = (markedOnly: boolean, limit: number) =>
    appliedSeq < 1 ? [] : stream.points.newest(limit * SCAN_FACTOR, appliedSeq, markedOnly).filter(keep).slice(0, limit);
  const recent = pick(false, o.recentLimit);
  return {
    appliedSeq: Math.max(0, appliedSeq),
    oldest: first ?? null,
    newest: recent[0] ?? null,
    tiers: { fullSeconds: Number.isFinite(tiers.fullSeconds) ? tiers.fullSeconds : null, minuteTierSeconds: tiers.minuteTierSeconds ?? MINUTE_TIER_SECONDS },
    recent,
    marked: pick(true, o.markedLimit),
    ...(stream.shortenedForSpaceMs === undefined ? {} : { shortenedForSpaceTime: new Date(stream.shortenedForSpaceMs).toISOString() }),
  };
}
