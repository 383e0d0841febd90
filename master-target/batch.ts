/**
 * A batch checked and ready to apply: the frame decoded, every WRITE payload decompressed
 * once (so a bad payload is refused before anything is stored).
 */
import type { BufferPool } from '../core/buffer-pool.ts';
import { decompressInto } from '../core/lz4.ts';
import { FrameError } from '../core/errors.ts';
import { decodeFrame, recordData, RecordType, type FrameHeader, type StoredRecord } from '../core/wire/frame.ts';

/** Decompressed data kept per batch; beyond it, payloads are decompressed again when written. */
const DATA_CACHE_BYTES = 256 * 1024 * 1024;

export interface PreparedRecord {
  stored: StoredRecord;
  seq: number;
  type: RecordType;
  offset: number;
  lengthBytes: number;
  /** Decompressed WRITE data, when it fitted in the cache. */
  data?: Buffer;
}

export interface PreparedBatch {
  header: FrameHeader;
  records: PreparedRecord[];
  /** Buffers of `pool` that records' data lives in: given back by `releaseBatch`. */
  pooled: Buffer[];
  pool?: BufferPool;
}

/** Decodes and checks a frame; throws FrameError (with a reason) when it must be refused. */
export function prepareBatch(buf: Buffer, pool?: BufferPool): PreparedBatch {
  const frame = decodeFrame(buf);
  return prepareRecords(frame.header, frame.records, pool);
}

/**
 * Prepares records already decoded from a verified frame. With `pool`, decompressed data goes
 * into its buffers; `releaseBatch` gives them back once the batch is applied (or refused).
 */
export function prepareRecords(header: FrameHeader, stored: readonly StoredRecord[], pool?: BufferPool): PreparedBatch {
  const batch: PreparedBatch = { header, records: [], pooled: [], pool };
  let cached = 0;
  try {
    for (const r of stored) {
      const p: PreparedRecord = { stored: r, seq: r.seq, type: r.type, offset: r.offset, lengthBytes: r.lengthBytes };
      if (r.type === RecordType.WRITE) {
        if (!r.compressed) p.data = r.payload;
        else if (cached + r.lengthBytes <= DATA_CACHE_BYTES) {
          p.data = pool ? decompressPooled(r, batch) : recordData(r);
          cached += r.lengthBytes;
        } else recordData(r);
      }
      batch.records.push(p);
    }
  } catch (e) {
    releaseBatch(batch);
    throw e;
  }
  return batch;
}

function decompressPooled(r: StoredRecord, batch: PreparedBatch): Buffer {
  const out = batch.pool!.acquire(r.lengthBytes);
  batch.pooled.push(out);
  try {
    decompressInto(r.payload, r.lengthBytes, out, 0);
  } catch (cause) {
    throw new FrameError('malformed', `record seq ${r.seq}: ${(cause as Error).message}`);
  }
  return out;
}

/** Gives the batch's pooled buffers back; nothing of the batch may be used afterwards. */
export function releaseBatch(b: PreparedBatch): void {
  for (const buf of b.pooled) b.pool?.release(buf);
  b.pooled.length = 0;
}

/** The bytes a WRITE record writes. */
export function writeData(r: PreparedRecord): Buffer {
  return r.data ?? recordData(r.stored);
}

/** True for records that change disk bytes. */
export function changesData(r: PreparedRecord): boolean {
  return r.type !== RecordType.TAG && r.lengthBytes > 0;
}
