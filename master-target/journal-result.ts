/**
 * RESULT items (docs/journal-format.md, "Applying a batch"): what each record range of a batch
 * holds once the batch is applied, so that recovery can tell an entry whose replica writes all
 * landed (commit it) from one whose writes did not (roll it back) without a COMMIT item.
 */
import { xxh64Of } from '../core/hash.ts';
import { RecordType } from '../core/wire/frame.ts';
import { changesData, writeData, type PreparedBatch } from './batch.ts';
import type { Begin, ResultRange } from './journal-segment.ts';
import { CHUNK_BYTES, isAllZero, type ImageFile } from './replica.ts';

/** The ranges of a batch whose records do not overlap: each WRITE's hash, each ZERO or TRIM as zero. */
export function resultOf(batch: PreparedBatch): ResultRange[] {
  const out: ResultRange[] = [];
  for (const r of batch.records) {
    if (!changesData(r)) continue;
    if (r.type === RecordType.WRITE) out.push({ offset: r.offset, lengthBytes: r.lengthBytes, zero: false, hash: xxh64Of(writeData(r)) });
    else out.push({ offset: r.offset, lengthBytes: r.lengthBytes, zero: true });
  }
  return out;
}

/** True when the replica has the entry's size and holds what its RESULT says in every range. */
export async function resultHolds(replica: ImageFile, begin: Begin, result: ResultRange[]): Promise<boolean> {
  if (replica.sizeBytes !== begin.diskBytes) return false;
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  for (const r of result) {
    if (r.offset + r.lengthBytes > replica.sizeBytes) return false;
    if (r.zero) {
      for (let at = 0; at < r.lengthBytes; at += CHUNK_BYTES) {
        const piece = buf.subarray(0, Math.min(CHUNK_BYTES, r.lengthBytes - at));
        await replica.readInto(piece, r.offset + at);
        if (!isAllZero(piece)) return false;
      }
      continue;
    }
    const data = await replica.read(r.offset, r.lengthBytes);
    if (!xxh64Of(data).equals(r.hash!)) return false;
  }
  return true;
}
