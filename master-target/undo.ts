/**
 * The undo records of a batch: for each record that changes data, the bytes it overwrites as
 * they stand after the batch's earlier records (records of one batch may overlap). Blocks the
 * written map knows to be zero are not read; adjacent ranges are read in one call.
 */
import { compressIfWorthwhile } from '../core/lz4.ts';
import { RecordType } from '../core/wire/frame.ts';
import { changesData, writeData, type PreparedBatch, type PreparedRecord } from './batch.ts';
import { UndoEncoding } from './journal-segment.ts';
import { CHUNK_BYTES, isAllZero, type ImageFile } from './replica.ts';
import type { WrittenMap } from './written-map.ts';

/** Bytes written by an earlier record of the same batch. `data` undefined means zeros. */
interface Extent {
  start: number;
  end: number;
  data?: Buffer;
}

/** One UNDO item to write: the old bytes of `[offset, offset + lengthBytes)` before record `seq`. */
export interface UndoItem {
  seq: number;
  offset: number;
  lengthBytes: number;
  encoding: UndoEncoding;
  /** RAW or LZ4 payload; none for ZERO. */
  payload?: Buffer;
}

/** What the undo pass found. */
export interface UndoPlan {
  /** In record order, each record's pieces in offset order, at most CHUNK_BYTES each. */
  items: UndoItem[];
  /** For ZERO and TRIM records (by index): the pieces that are not zero already and must be written. */
  zeroPieces: Map<number, Array<[offset: number, length: number]>>;
  /** True when some records of the batch overlap: their writes must keep their order. */
  overlapping: boolean;
}

/** A range of old bytes to read from the replica for one record. */
interface ReadRequest {
  record: number;
  start: number;
  end: number;
  /** Filled by the read: the buffer holding these bytes, and where they start in it. */
  buf?: Buffer;
  at?: number;
}

/** Indices of the records whose range intersects another record's range in the batch. */
export function overlappingRecords(records: PreparedRecord[]): Set<number> {
  const idx = records.map((_, i) => i).filter((i) => changesData(records[i]));
  idx.sort((a, b) => records[a].offset - records[b].offset);
  const out = new Set<number>();
  let maxEnd = -1;
  let maxEndAt = -1;
  for (let k = 0; k < idx.length; k++) {
    const r = records[idx[k]];
    if (r.offset < maxEnd) {
      out.add(idx[k]);
      out.add(maxEndAt);
    }
    const next = records[idx[k + 1]];
    if (next && r.offset + r.lengthBytes > next.offset) out.add(idx[k]);
    if (r.offset + r.lengthBytes > maxEnd) {
      maxEnd = r.offset + r.lengthBytes;
      maxEndAt = idx[k];
    }
  }
  return out;
}

/**
 * Finds the bytes each record will overwrite and returns them as UNDO items, in record order.
 * Reads only blocks that `written` says may hold data, one read per run of adjacent ranges.
 * Does not change the replica.
 */
export async function collectUndo(batch: PreparedBatch, replica: ImageFile, written: WrittenMap): Promise<UndoPlan> {
  const records = batch.records;
  const overlapping = overlappingRecords(records);
  const plan: UndoPlan = { items: [], zeroPieces: new Map(), overlapping: overlapping.size > 0 };
  const requests = await readOldBytes(records, replica, written);
  let overlay: Extent[] = [];
  let next = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!changesData(r)) continue;
    const zeroing = r.type === RecordType.ZERO || r.type === RecordType.TRIM;
    const mine: ReadRequest[] = [];
    while (next < requests.length && requests[next].record === i) mine.push(requests[next++]);
    const overlaid = overlapping.has(i);
    let old: Buffer | undefined;
    if (mine.length === 1 && !overlaid && mine[0].start === r.offset && mine[0].end === r.offset + r.lengthBytes) {
      old = mine[0].buf!.subarray(mine[0].at!, mine[0].at! + r.lengthBytes);
    } else if (mine.length || overlaid) {
      old = Buffer.alloc(r.lengthBytes);
      for (const q of mine) q.buf!.copy(old, q.start - r.offset, q.at!, q.at! + (q.end - q.start));
      if (overlaid) laySince(old, r.offset, overlay);
    }
    const pieces: Array<[number, number]> = [];
    for (let at = 0; at < r.lengthBytes; at += CHUNK_BYTES) {
      const offset = r.offset + at;
      const length = Math.min(CHUNK_BYTES, r.lengthBytes - at);
      const piece = old?.subarray(at, at + length);
      if (!piece || isAllZero(piece)) {
        plan.items.push({ seq: r.seq, offset, lengthBytes: length, encoding: UndoEncoding.ZERO });
        continue;
      }
      if (zeroing) pieces.push([offset, length]);
      const packed = compressIfWorthwhile(piece);
      plan.items.push(
        packed
          ? { seq: r.seq, offset, lengthBytes: length, encoding: UndoEncoding.LZ4, payload: packed }
          : { seq: r.seq, offset, lengthBytes: length, encoding: UndoEncoding.RAW, payload: piece },
      );
    }
    if (zeroing) plan.zeroPieces.set(i, pieces);
    if (overlaid) {
      const e: Extent = { start: r.offset, end: r.offset + r.lengthBytes, data: zeroing ? undefined : writeData(r) };
      overlay = overlay.filter((x) => x.start < e.start || x.end > e.end);
      overlay.push(e);
    }
  }
  return plan;
}

/**
 * The replica ranges the batch's records cover in written blocks (within the file), in record
 * order, read with one call per run of ranges that follow each other on the disk.
 */
async function readOldBytes(records: PreparedRecord[], replica: ImageFile, written: WrittenMap): Promise<ReadRequest[]> {
  const requests: ReadRequest[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!changesData(r)) continue;
    const end = Math.min(r.offset + r.lengthBytes, replica.sizeBytes);
    if (end <= r.offset) continue;
    for (const [s, t] of written.writtenRanges(r.offset, end - r.offset)) requests.push({ record: i, start: s, end: t });
  }
  for (let k = 0; k < requests.length; ) {
    let j = k + 1;
    let bytes = requests[k].end - requests[k].start;
    while (j < requests.length && requests[j].start === requests[j - 1].end && bytes < MAX_READ_BYTES) {
      bytes += requests[j].end - requests[j].start;
      j++;
    }
    const buf = Buffer.allocUnsafe(bytes);
    await replica.readInto(buf, requests[k].start);
    for (let q = k, at = 0; q < j; q++) {
      requests[q].buf = buf;
      requests[q].at = at;
      at += requests[q].end - requests[q].start;
    }
    k = j;
  }
  return requests;
}

/** Longest run of old bytes read in one call. */
const MAX_READ_BYTES = 16 * 1024 * 1024;

/** Lays the batch's earlier writes (oldest first) over `old`, which holds the bytes at `offset`. */
function laySince(old: Buffer, offset: number, overlay: Extent[]): void {
  const end = offset + old.length;
  for (const e of overlay) {
    const s = Math.max(offset, e.start);
    const t = Math.min(end, e.end);
    if (s >= t) continue;
    if (e.data) e.data.copy(old, s - offset, s - e.start, t - e.start);
    else old.fill(0, s - offset, t - offset);
  }
}
