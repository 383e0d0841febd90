/**
 * An in-memory index of one stream's UNDO items by disk offset, so that a point-in-time read
 * finds the undo records covering a range without scanning the journal.
 *
 * Items are kept in seq order in columnar typed arrays (about 45 bytes each). Each 64 KiB block
 * of the disk has a chain of links to the items touching it, newest first (16 bytes a link),
 * from a head table allocated in pages of 4096 blocks (8 bytes a block). Items are added in seq
 * order, removed newest first (rollback) and dropped oldest first (retention).
 */
import type { UndoEncoding } from './journal-segment.ts';

const BLOCK_BYTES = 64 * 1024;
const PAGE_BLOCKS = 4096;
const NONE = -1;

/** One UNDO item as the index knows it. */
export interface IndexedUndo {
  seq: number;
  offset: number;
  lengthBytes: number;
  encoding: UndoEncoding;
  /** First seq of the segment holding the item (its file name). */
  segment: number;
  /** Where the item starts in its segment file, and its length there. */
  at: number;
  itemBytes: number;
}

/** The part `[start, end)` of the disk whose bytes at the point come from `item`. */
export interface UndoPiece {
  id: number;
  item: IndexedUndo;
  start: number;
  end: number;
}

/** Growable columns addressed by absolute id; a prefix can be dropped. */
class Columns {
  base = 0;
  first = 0;
  next = 0;
  capacity = 0;

  constructor(private readonly grow: (capacity: number, keepFrom: number, keepCount: number) => void) {}

  /** The slot for a new id (growing or compacting the arrays first). */
  slot(): number {
    if (this.next - this.base >= this.capacity) {
      const live = this.next - this.first;
      const capacity = (live + 1) * 2 > this.capacity ? Math.max(1024, this.capacity * 2) : this.capacity;
      this.grow(capacity, this.first - this.base, live);
      this.base = this.first;
      this.capacity = capacity;
    }
    return this.next++ - this.base;
  }
}

export class UndoIndex {
  private iSeq = new Float64Array(0);
  private iOffset = new Float64Array(0);
  private iSegment = new Float64Array(0);
  private iAt = new Float64Array(0);
  private iLength = new Uint32Array(0);
  private iItemBytes = new Uint32Array(0);
  private iEncoding = new Uint8Array(0);
  private readonly items = new Columns((cap, from, n) => {
    this.iSeq = regrow(this.iSeq, cap, from, n);
    this.iOffset = regrow(this.iOffset, cap, from, n);
    this.iSegment = regrow(this.iSegment, cap, from, n);
    this.iAt = regrow(this.iAt, cap, from, n);
    this.iLength = regrow(this.iLength, cap, from, n);
    this.iItemBytes = regrow(this.iItemBytes, cap, from, n);
    this.iEncoding = regrow(this.iEncoding, cap, from, n);
  });

  private lItem = new Float64Array(0);
  private lPrev = new Float64Array(0);
  private lBlock = new Float64Array(0);
  private readonly links = new Columns((cap, from, n) => {
    this.lItem = regrow(this.lItem, cap, from, n);
    this.lPrev = regrow(this.lPrev, cap, from, n);
    this.lBlock = regrow(this.lBlock, cap, from, n);
  });

  private readonly heads = new Map<number, Float64Array>();

  /** Items held. */
  get size(): number {
    return this.items.next - this.items.first;
  }

  /** Seq of the newest item, or undefined. */
  get newestSeq(): number | undefined {
    return this.size ? this.iSeq[this.items.next - 1 - this.items.base] : undefined;
  }

  /** Adds an item; its seq must not be smaller than any held. */
  add(u: IndexedUndo): void {
    if (u.lengthBytes <= 0) return;
    const newest = this.newestSeq;
    if (newest !== undefined && u.seq < newest) throw new RangeError(`undo index: seq ${u.seq} added after ${newest}`);
    const s = this.items.slot();
    const id = this.items.next - 1;
    this.iSeq[s] = u.seq;
    this.iOffset[s] = u.offset;
    this.iSegment[s] = u.segment;
    this.iAt[s] = u.at;
    this.iLength[s] = u.lengthBytes;
    this.iItemBytes[s] = u.itemBytes;
    this.iEncoding[s] = u.encoding;
    const last = Math.floor((u.offset + u.lengthBytes - 1) / BLOCK_BYTES);
    for (let b = Math.floor(u.offset / BLOCK_BYTES); b <= last; b++) {
      const l = this.links.slot();
      this.lItem[l] = id;
      this.lPrev[l] = this.head(b);
      this.lBlock[l] = b;
      this.setHead(b, this.links.next - 1);
    }
  }

  /** Removes the items with seq ≥ `seq` (an entry rolled back). */
  removeFrom(seq: number): void {
    const it = this.items;
    const ln = this.links;
    while (it.next > it.first && this.iSeq[it.next - 1 - it.base] >= seq) {
      const id = it.next - 1;
      while (ln.next > ln.first && this.lItem[ln.next - 1 - ln.base] === id) {
        const l = ln.next - 1 - ln.base;
        this.setHead(this.lBlock[l], this.lPrev[l]);
        ln.next--;
      }
      it.next--;
    }
  }

  /** Forgets the items with seq < `seq` (their segments were deleted). */
  dropBefore(seq: number): void {
    const it = this.items;
    const ln = this.links;
    while (it.first < it.next && this.iSeq[it.first - it.base] < seq) it.first++;
    while (ln.first < ln.next && this.lItem[ln.first - ln.base] < it.first) ln.first++;
  }

  /**
   * A new index holding the same items, except those of `segment`, which are replaced by
   * `items` (in seq order, with seqs within that segment's range). Costs a pass over every
   * item; the index itself is left unchanged, so readers using it are undisturbed.
   */
  withSegmentReplaced(segment: number, items: IndexedUndo[]): UndoIndex {
    const out = new UndoIndex();
    let added = false;
    const addNew = () => {
      if (added) return;
      added = true;
      for (const u of items) out.add(u);
    };
    for (let id = this.items.first; id < this.items.next; id++) {
      const s = id - this.items.base;
      const seg = this.iSegment[s];
      if (seg === segment) continue;
      if (seg > segment) addNew();
      out.add(this.item(id));
    }
    addNew();
    return out;
  }

  /** The item with absolute id `id`. */
  item(id: number): IndexedUndo {
    const s = id - this.items.base;
    return {
      seq: this.iSeq[s],
      offset: this.iOffset[s],
      lengthBytes: this.iLength[s],
      encoding: this.iEncoding[s] as UndoEncoding,
      segment: this.iSegment[s],
      at: this.iAt[s],
      itemBytes: this.iItemBytes[s],
    };
  }

  /**
   * Where the bytes of `[offset, offset + length)` at point `seq` come from when not from the
   * replica: for every byte covered by an item with a seq greater than `seq`, the oldest such
   * item. Pieces are disjoint, in no particular order.
   */
  lookup(seq: number, offset: number, length: number): UndoPiece[] {
    if (length <= 0 || !this.size) return [];
    const end = offset + length;
    const ids = new Set<number>();
    const last = Math.floor((end - 1) / BLOCK_BYTES);
    for (let b = Math.floor(offset / BLOCK_BYTES); b <= last; b++) {
      for (let l = this.head(b); l >= this.links.first; l = this.lPrev[l - this.links.base]) {
        const id = this.lItem[l - this.links.base];
        const s = id - this.items.base;
        if (this.iSeq[s] <= seq) break;
        if (this.iOffset[s] < end && this.iOffset[s] + this.iLength[s] > offset) ids.add(id);
      }
    }
    if (!ids.size) return [];
    const out: UndoPiece[] = [];
    // Oldest first: a byte takes the first item that covers it.
    const covered: Array<[number, number]> = [];
    for (const id of [...ids].sort((a, b) => a - b)) {
      const s = id - this.items.base;
      const start = Math.max(offset, this.iOffset[s]);
      const stop = Math.min(end, this.iOffset[s] + this.iLength[s]);
      const item = this.item(id);
      for (const [gs, gt] of gaps(covered, start, stop)) out.push({ id, item, start: gs, end: gt });
      cover(covered, start, stop);
      if (covered.length === 1 && covered[0][0] <= offset && covered[0][1] >= end) break;
    }
    return out;
  }

  private head(block: number): number {
    const page = this.heads.get(Math.floor(block / PAGE_BLOCKS));
    return page ? page[block % PAGE_BLOCKS] : NONE;
  }

  private setHead(block: number, link: number): void {
    const p = Math.floor(block / PAGE_BLOCKS);
    let page = this.heads.get(p);
    if (!page) {
      page = new Float64Array(PAGE_BLOCKS).fill(NONE);
      this.heads.set(p, page);
    }
    page[block % PAGE_BLOCKS] = link;
  }
}

function regrow<T extends Float64Array | Uint32Array | Uint8Array>(a: T, capacity: number, from: number, count: number): T {
  const out = new (a.constructor as new (n: number) => T)(capacity);
  out.set(a.subarray(from, from + count));
  return out;
}

/** The parts of `[start, stop)` not in `covered` (sorted, disjoint). */
function gaps(covered: Array<[number, number]>, start: number, stop: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = start;
  for (const [s, t] of covered) {
    if (t <= at) continue;
    if (s >= stop) break;
    if (s > at) out.push([at, s]);
    at = Math.max(at, t);
    if (at >= stop) break;
  }
  if (at < stop) out.push([at, stop]);
  return out;
}

/** Adds `[start, stop)` to `covered`, keeping it sorted and merged. */
function cover(covered: Array<[number, number]>, start: number, stop: number): void {
  let i = 0;
  while (i < covered.length && covered[i][1] < start) i++;
  let j = i;
  let s = start;
  let t = stop;
  while (j < covered.length && covered[j][0] <= t) {
    s = Math.min(s, covered[j][0]);
    t = Math.max(t, covered[j][1]);
    j++;
  }
  covered.splice(i, j - i, [s, t]);
}
