/**
 * The recovery points of one disk stream, kept compactly: TAG points one by one, and the
 * record boundaries of ORDERED batches as seq ranges (one per batch, however many records).
 */
import type { PointKind } from '../core/wire/frame.ts';
import type { StoredPoint } from './journal-segment.ts';

/** A recovery point as the HTTP API shows it. */
export interface Point {
  id: string;
  seq: number;
  time: string;
  kind: PointKind;
  consistent: boolean;
  name?: string;
}

interface TagPoint {
  seq: number;
  kind: PointKind;
  timeMs: number;
  name?: string;
}

interface OrderedRange {
  firstSeq: number;
  lastSeq: number;
  timeMs: number;
}

export interface ListOptions {
  /** Only points with a seq greater than this. */
  sinceSeq?: number;
  /** At most this many points. */
  limit?: number;
  /** Points older than this are left out, except the newest of them (it covers the window's start). */
  notBeforeMs?: number;
}

export class PointIndex {
  private tags: TagPoint[] = [];
  private ranges: OrderedRange[] = [];

  /** Records the points of one committed batch (tags in seq order). */
  addBatch(firstSeq: number, lastSeq: number, timeMs: number, ordered: boolean, tags: Array<{ seq: number; point: StoredPoint }>): void {
    if (ordered) this.ranges.push({ firstSeq, lastSeq, timeMs });
    for (const t of tags) this.tags.push(toTag(t.seq, t.point));
  }

  /** Records the point just before the oldest retained segment, known from its header. */
  addBase(seq: number, p: StoredPoint): void {
    if (this.pointAt(seq)) return;
    const t = toTag(seq, p);
    const at = lowerBound(this.tags, seq, (x) => x.seq);
    this.tags.splice(at, 0, t);
  }

  /** Forgets the points below `seq`. */
  dropBefore(seq: number): void {
    this.tags = this.tags.slice(lowerBound(this.tags, seq, (x) => x.seq));
    this.ranges = this.ranges.slice(lowerBound(this.ranges, seq, (x) => x.lastSeq));
    if (this.ranges.length && this.ranges[0].firstSeq < seq) this.ranges[0] = { ...this.ranges[0], firstSeq: seq };
  }

  /** Forgets the points above `seq` (an entry rolled back). */
  dropAfter(seq: number): void {
    this.tags = this.tags.slice(0, lowerBound(this.tags, seq + 1, (x) => x.seq));
    this.ranges = this.ranges.slice(0, lowerBound(this.ranges, seq + 1, (x) => x.firstSeq));
    const last = this.ranges.at(-1);
    if (last && last.lastSeq > seq) this.ranges[this.ranges.length - 1] = { ...last, lastSeq: seq };
  }

  /** Replaces the points with seqs in `[firstSeq, lastSeq]` by `tags` (a compacted segment). */
  replaceRange(firstSeq: number, lastSeq: number, tags: Array<{ seq: number; point: StoredPoint }>): void {
    const ti = lowerBound(this.tags, firstSeq, (x) => x.seq);
    const tj = lowerBound(this.tags, lastSeq + 1, (x) => x.seq);
    this.tags.splice(ti, tj - ti, ...tags.map((t) => toTag(t.seq, t.point)));
    const kept: OrderedRange[] = [];
    for (const r of this.ranges) {
      if (r.lastSeq < firstSeq || r.firstSeq > lastSeq) kept.push(r);
      else {
        // Entries never cross a segment, but keep whatever lies outside the range all the same.
        if (r.firstSeq < firstSeq) kept.push({ ...r, lastSeq: firstSeq - 1 });
        if (r.lastSeq > lastSeq) kept.push({ ...r, firstSeq: lastSeq + 1 });
      }
    }
    this.ranges = kept;
  }

  /** The point at `seq`, if there is one. */
  pointAt(seq: number): Point | undefined {
    const t = this.tags[lowerBound(this.tags, seq, (x) => x.seq)];
    if (t && t.seq === seq) return tagPoint(t);
    const r = this.ranges[lowerBound(this.ranges, seq, (x) => x.lastSeq)];
    if (r && r.firstSeq <= seq) return rangePoint(r, seq);
    return undefined;
  }

  /** The newest point whose time is at or before `timeMs`. */
  newestAtOrBefore(timeMs: number): Point | undefined {
    let best: Point | undefined;
    for (let i = this.tags.length - 1; i >= 0; i--) {
      if (this.tags[i].timeMs <= timeMs) {
        best = tagPoint(this.tags[i]);
        break;
      }
    }
    for (let i = this.ranges.length - 1; i >= 0; i--) {
      const r = this.ranges[i];
      if (best && r.lastSeq <= best.seq) break;
      if (r.timeMs <= timeMs) {
        best = this.pointAt(r.lastSeq);
        break;
      }
    }
    return best;
  }

  /** The first seq a listing shows: the newest point older than `notBeforeMs`, or 0. */
  private windowStart(notBeforeMs: number | undefined): number {
    if (notBeforeMs === undefined) return 0;
    let start = 0;
    for (let i = this.tags.length - 1; i >= 0; i--) {
      if (this.tags[i].timeMs < notBeforeMs) {
        start = this.tags[i].seq;
        break;
      }
    }
    for (let i = this.ranges.length - 1; i >= 0 && this.ranges[i].lastSeq > start; i--) {
      if (this.ranges[i].timeMs < notBeforeMs) {
        start = this.ranges[i].lastSeq;
        break;
      }
    }
    return start;
  }

  /**
   * Up to `limit` points with a seq at or below `upToSeq`, newest first; with `markedOnly`,
   * only tagged points of another kind than crash (app-consistent, group, bookmark).
   */
  newest(limit: number, upToSeq: number, markedOnly = false): Point[] {
    const out: Point[] = [];
    let ti = lowerBound(this.tags, upToSeq + 1, (x) => x.seq) - 1;
    if (markedOnly) {
      for (; ti >= 0 && out.length < limit; ti--) if (this.tags[ti].kind !== 'crash') out.push(tagPoint(this.tags[ti]));
      return out;
    }
    let ri = lowerBound(this.ranges, upToSeq + 1, (x) => x.firstSeq) - 1;
    let seq = upToSeq;
    while (out.length < limit) {
      const t = ti >= 0 ? this.tags[ti] : undefined;
      const r = ri >= 0 ? this.ranges[ri] : undefined;
      if (!t && !r) break;
      const rangeSeq = r ? Math.min(seq, r.lastSeq) : -1;
      // A tag and a range point at the same seq are one point: the tag (as `list` has it).
      if (t && t.seq >= rangeSeq) {
        out.push(tagPoint(t));
        seq = t.seq - 1;
        ti--;
      } else {
        out.push(rangePoint(r!, rangeSeq));
        seq = rangeSeq - 1;
      }
      if (r && seq < r.firstSeq) ri--;
      while (ti >= 0 && this.tags[ti].seq > seq) ti--;
    }
    return out;
  }

  /** Points oldest first (see ListOptions). */
  list(opts: ListOptions = {}): Point[] {
    const from = Math.max(this.windowStart(opts.notBeforeMs), (opts.sinceSeq ?? 0) + 1);
    const limit = opts.limit ?? Number.POSITIVE_INFINITY;
    const out: Point[] = [];
    let ti = lowerBound(this.tags, from, (x) => x.seq);
    let ri = lowerBound(this.ranges, from, (x) => x.lastSeq);
    let seq = from;
    while (out.length < limit) {
      const t = this.tags[ti];
      const r = this.ranges[ri];
      if (!t && !r) break;
      const rangeSeq = r ? Math.max(seq, r.firstSeq) : Number.POSITIVE_INFINITY;
      if (t && t.seq <= rangeSeq) {
        out.push(tagPoint(t));
        seq = t.seq + 1;
        ti++;
      } else {
        out.push(rangePoint(r, rangeSeq));
        seq = rangeSeq + 1;
      }
      if (r && seq > r.lastSeq) ri++;
      while (this.tags[ti] && this.tags[ti].seq < seq) ti++;
    }
    return out;
  }
}

function toTag(seq: number, p: StoredPoint): TagPoint {
  return { seq, kind: p.kind as PointKind, timeMs: p.timeMs, ...(p.name !== undefined ? { name: p.name } : {}) };
}

function tagPoint(t: TagPoint): Point {
  const p: Point = { id: String(t.seq), seq: t.seq, time: new Date(t.timeMs).toISOString(), kind: t.kind, consistent: true };
  if (t.name !== undefined) p.name = t.name;
  return p;
}

function rangePoint(r: OrderedRange, seq: number): Point {
  return { id: String(seq), seq, time: new Date(r.timeMs).toISOString(), kind: 'crash', consistent: true };
}

/** First index whose key is >= `key` (the array is sorted by key). */
function lowerBound<T>(a: T[], key: number, keyOf: (x: T) => number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(a[mid]) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
