/**
 * The undo records of a batch: for each record that changes data, the bytes it overwrites as
 * they stand after the batch's earlier records (records of one batch may overlap).
 */
import { compressIfSmaller } from '../core/lz4.ts';
import { RecordType } from '../core/wire/frame.ts';
import { changesData, writeData, type PreparedBatch, type PreparedRecord } from './batch.ts';
import { encodeUndo, UndoEncoding } from './journal-segment.ts';
import { CHUNK_BYTES, isAllZero, type ImageFile } from './replica.ts';

/** Bytes written by an earlier record of the same batch. `data` undefined means zeros. */
interface Extent {
  start: number;
  end: number;
  data?: Buffer;
}

/** What the replica write needs to know from the undo pass. */
export interface UndoPlan {
  /** For ZERO and TRIM records (by index): the pieces that are not zero already and must be written. */
  zeroPieces: Map<number, Array<[offset: number, length: number]>>;
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
 * Reads the bytes each record will overwrite and hands the encoded UNDO items to `emit`, in
 * record order. Does not change the replica.
 */
export async function collectUndo(
  batch: PreparedBatch,
  replica: ImageFile,
  emit: (parts: Buffer[]) => Promise<void>,
): Promise<UndoPlan> {
  const overlapping = overlappingRecords(batch.records);
  let overlay: Extent[] = [];
  const plan: UndoPlan = { zeroPieces: new Map() };
  for (let i = 0; i < batch.records.length; i++) {
    const r = batch.records[i];
    if (!changesData(r)) continue;
    const zeroing = r.type === RecordType.ZERO || r.type === RecordType.TRIM;
    const pieces: Array<[number, number]> = [];
    for (let at = 0; at < r.lengthBytes; at += CHUNK_BYTES) {
      const offset = r.offset + at;
      const length = Math.min(CHUNK_BYTES, r.lengthBytes - at);
      const old = await replica.read(offset, length);
      if (overlapping.has(i)) laySince(old, offset, overlay);
      if (isAllZero(old)) {
        await emit(encodeUndo(r.seq, offset, length, UndoEncoding.ZERO));
        continue;
      }
      if (zeroing) pieces.push([offset, length]);
      const packed = compressIfSmaller(old);
      await emit(packed ? encodeUndo(r.seq, offset, length, UndoEncoding.LZ4, packed) : encodeUndo(r.seq, offset, length, UndoEncoding.RAW, old));
    }
    if (zeroing) plan.zeroPieces.set(i, pieces);
    if (overlapping.has(i)) {
      const e: Extent = { start: r.offset, end: r.offset + r.lengthBytes, data: zeroing ? undefined : writeData(r) };
      overlay = overlay.filter((x) => x.start < e.start || x.end > e.end);
      overlay.push(e);
    }
  }
  return plan;
}

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
