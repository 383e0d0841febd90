/**
 * Compaction of one sealed journal segment (docs/journal-format.md, "Compaction"): between
 * consecutive kept points only the oldest undo bytes of each range can ever be read, so the
 * segment is rewritten with one entry per interval holding just those bytes. The new segment is
 * written beside the old one (`*.seg.compact.tmp`) and synced; the caller swaps it in.
 */
import { open, unlink } from 'node:fs/promises';
import { compressIfWorthwhile } from '../core/lz4.ts';
import { EntryWriter } from './journal.ts';
import {
  decodeBegin,
  decodeTag,
  decodeUndo,
  encodeBegin,
  encodeCommit,
  encodeTag,
  encodeUndo,
  ItemReader,
  ItemType,
  readSegmentHeader,
  undoBytes,
  UndoEncoding,
  type Begin,
  type StoredPoint,
  type Undo,
} from './journal-segment.ts';
import { CHUNK_BYTES, isAllZero } from './replica.ts';
import type { IndexedUndo } from './undo-index.ts';

/** One committed entry of a segment with its undo items read back. */
interface EntryRead {
  begin: Begin;
  undo: Undo[];
}

export interface CompactInput {
  /** The sealed segment to rewrite. */
  path: string;
  firstSeq: number;
  lastSeq: number;
  /**
   * Seqs that must stay interval ends, in (firstSeq − 1, lastSeq]: kept points and pinned
   * seqs. lastSeq is always an end; firstSeq − 1 is the start.
   */
  ends: number[];
  /** The points to write as TAG items at their seq (kept points; others vanish). */
  points: Map<number, StoredPoint>;
}

export interface CompactOutput {
  /** The new segment, synced, still under its temporary name. */
  tmpPath: string;
  committedBytes: number;
  /** Its undo items as the index holds them. */
  items: IndexedUndo[];
  entries: number;
}

/** Reads `input.path`, writes the compacted segment next to it, and returns where it is. */
export async function compactSegment(input: CompactInput): Promise<CompactOutput> {
  const { header, headerBytes, entries } = await readEntries(input.path, input.firstSeq);
  const ends = [...new Set([...input.ends.filter((s) => s >= input.firstSeq && s < input.lastSeq), input.lastSeq])].sort((a, b) => a - b);
  const tmpPath = `${input.path}.compact.tmp`;
  const fh = await open(tmpPath, 'w+');
  try {
    await fh.write(header, 0, headerBytes, 0);
    const w = new EntryWriter(fh, headerBytes);
    const items: IndexedUndo[] = [];
    let e = 0;
    let start = input.firstSeq - 1;
    let prevDiskBytes = entries.length ? entries[0].begin.prevDiskBytes : 0;
    for (const end of ends) {
      // The entries overlapping (start, end]; an entry cut by `end` is visited again by the next interval.
      while (e < entries.length && entries[e].begin.lastSeq <= start) e++;
      const undo: Undo[] = [];
      let holder = entries[e];
      for (let k = e; k < entries.length && entries[k].begin.firstSeq <= end; k++) {
        holder = entries[k];
        for (const u of entries[k].undo) if (u.seq > start && u.seq <= end) undo.push(u);
      }
      if (!holder) throw new Error(`segment ${input.path} has no entry holding seq ${end}`);
      const firstSeq = start + 1;
      w.push(encodeBegin({ firstSeq, lastSeq: end, timeMs: holder.begin.timeMs, appliedMs: holder.begin.appliedMs, prevDiskBytes, diskBytes: holder.begin.diskBytes, frameFlags: 0 }));
      const point = input.points.get(end);
      if (point) w.push(encodeTag(end, Buffer.from(JSON.stringify(point), 'utf8')));
      for (const piece of oldestBytes(undo)) {
        for (let at = piece.start; at < piece.end; at += CHUNK_BYTES) {
          const length = Math.min(CHUNK_BYTES, piece.end - at);
          const old = piece.bytes?.subarray(at - piece.start, at - piece.start + length);
          let encoding = UndoEncoding.ZERO;
          let payload: Buffer | undefined;
          if (old && !isAllZero(old)) {
            payload = compressIfWorthwhile(old);
            encoding = payload ? UndoEncoding.LZ4 : UndoEncoding.RAW;
            payload ??= old;
          }
          const itemAt = w.push(encodeUndo(firstSeq, at, length, encoding, payload));
          items.push({ seq: firstSeq, offset: at, lengthBytes: length, encoding, segment: input.firstSeq, at: itemAt, itemBytes: w.endBytes - itemAt });
        }
      }
      w.push(encodeCommit({ lastSeq: end, committedMs: holder.begin.appliedMs }));
      await w.flush();
      prevDiskBytes = holder.begin.diskBytes;
      start = end;
    }
    await fh.datasync();
    return { tmpPath, committedBytes: w.endBytes, items, entries: ends.length };
  } catch (err) {
    await unlink(tmpPath).catch(() => undefined);
    throw err;
  } finally {
    await fh.close();
  }
}

async function readEntries(path: string, firstSeq: number): Promise<{ header: Buffer; headerBytes: number; entries: EntryRead[] }> {
  const fh = await open(path, 'r');
  try {
    const h = await readSegmentHeader(fh, path);
    if (h.firstSeq !== firstSeq) throw new Error(`segment ${path} starts at seq ${h.firstSeq}, expected ${firstSeq}`);
    const header = Buffer.alloc(h.headerBytes);
    await fh.read(header, 0, h.headerBytes, 0);
    const { size } = await fh.stat();
    const reader = new ItemReader(fh, h.headerBytes, size);
    const entries: EntryRead[] = [];
    let open: EntryRead | undefined;
    for (let item = await reader.next(); item; item = await reader.next()) {
      if (item.type === ItemType.BEGIN) open = { begin: decodeBegin(item.body), undo: [] };
      else if (item.type === ItemType.UNDO) open!.undo.push(decodeUndo(item.body));
      else if (item.type === ItemType.TAG) decodeTag(item.body);
      else if (item.type === ItemType.COMMIT) {
        entries.push(open!);
        open = undefined;
      }
    }
    if (open) throw new Error(`segment ${path} ends inside an entry; only sealed segments are compacted`);
    return { header, headerBytes: h.headerBytes, entries };
  } finally {
    await fh.close();
  }
}

/** A run of disk bytes and the old bytes it restores (undefined: zeros). */
interface Piece {
  start: number;
  end: number;
  bytes?: Buffer;
}

/**
 * For every byte any of `undo` covers, the bytes of the oldest item covering it (items are in
 * journal order: seq order, and disjoint within one seq), as runs in disk order. A sweep over
 * the items' boundaries with a heap of the items covering the current position.
 */
export function oldestBytes(undo: Undo[]): Piece[] {
  if (!undo.length) return [];
  const order = undo.map((_, i) => i).sort((a, b) => undo[a].offset - undo[b].offset);
  const cuts = [...new Set(undo.flatMap((u) => [u.offset, u.offset + u.lengthBytes]))].sort((a, b) => a - b);
  const heap = new MinHeap();
  const decoded = new Map<number, Buffer | undefined>();
  const bytesOf = (i: number) => {
    if (!decoded.has(i)) decoded.set(i, undoBytes(undo[i]));
    return decoded.get(i);
  };
  const out: Piece[] = [];
  let next = 0;
  let run: { item: number; start: number; end: number } | undefined;
  const emit = () => {
    if (!run) return;
    const u = undo[run.item];
    const all = bytesOf(run.item);
    out.push({ start: run.start, end: run.end, ...(all ? { bytes: all.subarray(run.start - u.offset, run.end - u.offset) } : {}) });
    run = undefined;
  };
  for (let c = 0; c < cuts.length - 1; c++) {
    const at = cuts[c];
    while (next < order.length && undo[order[next]].offset <= at) heap.push(order[next++]);
    while (heap.size && undo[heap.top].offset + undo[heap.top].lengthBytes <= at) heap.pop();
    if (!heap.size) {
      emit();
      continue;
    }
    const winner = heap.top;
    if (run && run.item === winner && run.end === at) run.end = cuts[c + 1];
    else {
      emit();
      run = { item: winner, start: at, end: cuts[c + 1] };
    }
  }
  emit();
  // Adjacent runs of zeros from different items are one piece.
  const merged: Piece[] = [];
  for (const p of out) {
    const prev = merged.at(-1);
    if (prev && !prev.bytes && !p.bytes && prev.end === p.start) prev.end = p.end;
    else merged.push(p);
  }
  return merged;
}

/** A binary min-heap of item numbers (smaller number = older item). */
class MinHeap {
  private a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  get top(): number {
    return this.a[0];
  }

  push(v: number): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p] <= a[i]) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }

  pop(): void {
    const a = this.a;
    const last = a.pop()!;
    if (!a.length) return;
    a[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l] < a[m]) m = l;
      if (r < a.length && a[r] < a[m]) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i], a[m]];
      i = m;
    }
  }
}
