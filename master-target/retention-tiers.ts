/**
 * Retention tiers (docs/journal-format.md, "Retention tiers"): every point is kept while it is
 * younger than `fullSeconds`; then the newest point of each minute until `minuteTierSeconds`
 * (24 h); then the newest point of each hour until the window ends. Buckets nest and the rule
 * is "the newest of the bucket", so a point a coarser tier keeps was kept by every finer tier
 * before it: thinning only ever removes points, never brings one back.
 */
import type { Point } from './points.ts';

/** Default of `--retention-full`: every point for an hour. */
export const DEFAULT_RETENTION_FULL_SECONDS = 3600;
/** Points are kept one per minute until this age. */
export const MINUTE_TIER_SECONDS = 24 * 3600;

export interface TierPolicy {
  /** Every point younger than this is kept. */
  fullSeconds: number;
  /** One point a minute until this age, then one an hour. @default MINUTE_TIER_SECONDS */
  minuteTierSeconds?: number;
}

/** Which bucket a point falls in at `nowMs`: `undefined` means the full tier (always kept). */
export function bucketOf(timeMs: number, nowMs: number, policy: TierPolicy): { startMs: number; endMs: number } | undefined {
  const ageMs = nowMs - timeMs;
  const fullMs = policy.fullSeconds * 1000;
  if (ageMs < fullMs) return undefined;
  const minuteTierMs = Math.max(fullMs, (policy.minuteTierSeconds ?? MINUTE_TIER_SECONDS) * 1000);
  const width = ageMs < minuteTierMs ? 60_000 : 3600_000;
  const startMs = Math.floor(timeMs / width) * width;
  // A bucket never reaches into a finer tier: its end is capped at that tier's boundary.
  const tierEndMs = ageMs < minuteTierMs ? nowMs - fullMs : nowMs - minuteTierMs;
  return { startMs, endMs: Math.min(startMs + width, tierEndMs) };
}

/** What thinning needs of a stream's points. */
export interface PointLookup {
  /** The newest point whose time is at or before `timeMs`. */
  newestAtOrBefore(timeMs: number): Point | undefined;
}

/**
 * Whether the tiers keep `p` at `nowMs`: it is in the full tier, or it is the newest point of
 * its bucket. `cache` (bucket start → kept seq) saves lookups across one listing.
 */
export function isKept(p: Point, points: PointLookup, nowMs: number, policy: TierPolicy, cache = new Map<string, number | undefined>()): boolean {
  if (p.kind === 'bookmark' && p.name) return true;
  const timeMs = Date.parse(p.time);
  const b = bucketOf(timeMs, nowMs, policy);
  if (!b) return true;
  const key = `${b.startMs}:${b.endMs}`;
  let kept = cache.get(key);
  if (!cache.has(key)) {
    const newest = points.newestAtOrBefore(b.endMs - 1);
    kept = newest && Date.parse(newest.time) >= b.startMs ? newest.seq : undefined;
    cache.set(key, kept);
  }
  return kept === p.seq;
}

/** The points of `listed` (oldest first) the tiers keep. */
export function thin(listed: Point[], points: PointLookup, nowMs: number, policy: TierPolicy): Point[] {
  const cache = new Map<string, number | undefined>();
  return listed.filter((p) => isKept(p, points, nowMs, policy, cache));
}
