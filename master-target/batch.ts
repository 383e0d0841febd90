/**
 * A batch checked and ready to apply: the frame decoded, every WRITE payload decompressed
 * once (so a bad payload is refused before anything is stored).
 */
import { decodeFrame, recordData, RecordType, type DecodedFrame, type FrameHeader, type StoredRecord } from '../core/wire/frame.ts';

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
  frame: DecodedFrame;
}

/** Decodes and checks a frame; throws FrameError (with a reason) when it must be refused. */
export function prepareBatch(buf: Buffer): PreparedBatch {
  const frame = decodeFrame(buf);
  let cached = 0;
  const records = frame.records.map((r): PreparedRecord => {
    const p: PreparedRecord = { stored: r, seq: r.seq, type: r.type, offset: r.offset, lengthBytes: r.lengthBytes };
    if (r.type === RecordType.WRITE) {
      const data = recordData(r);
      if (!r.compressed || cached + data.length <= DATA_CACHE_BYTES) {
        p.data = data;
        if (r.compressed) cached += data.length;
      }
    }
    return p;
  });
  return { header: frame.header, records, frame };
}

/** The bytes a WRITE record writes. */
export function writeData(r: PreparedRecord): Buffer {
  return r.data ?? recordData(r.stored);
}

/** True for records that change disk bytes. */
export function changesData(r: PreparedRecord): boolean {
  return r.type !== RecordType.TAG && r.lengthBytes > 0;
}
