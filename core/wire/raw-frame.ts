/**
 * Writes a frame from records whose payloads are already encoded (merged frames, version 2
 * frames built piece by piece). One allocation, one copy of each payload.
 */
import { CHECKSUM_BYTES, FRAME_HEADER_BYTES, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, type FrameHeader, type RecordType } from './frame.ts';
import { FrameWriter } from './frame-writer.ts';
import { pieceBytes, writePieces, type Piece } from './pieces.ts';

export interface RawRecord {
  type: RecordType;
  /** The payload is LZ4 (WRITE only). */
  compressed?: boolean;
  offset: number;
  lengthBytes: number;
  /** The payload as stored, or the pieces of a PIECES record. */
  payload: Buffer | readonly Piece[];
}

export type RawFrameHeader = Pick<FrameHeader, 'version' | 'flags' | 'firstSeq' | 'timeMs' | 'diskBytes' | 'machine' | 'disk'>;

/** Bytes the frame of these records would take. */
export function rawFrameBytes(h: Pick<RawFrameHeader, 'machine' | 'disk'>, records: readonly RawRecord[]): number {
  let total = FRAME_HEADER_BYTES + Buffer.byteLength(h.machine) + Buffer.byteLength(h.disk) + CHECKSUM_BYTES;
  for (const r of records) total += RECORD_HEADER_BYTES + payloadBytes(r);
  return total;
}

function payloadBytes(r: RawRecord): number {
  return Buffer.isBuffer(r.payload) ? r.payload.length : (r.payload as readonly Piece[]).reduce((n, p) => n + pieceBytes(p), 0);
}

/** Encodes records seq `h.firstSeq` onwards; RangeError beyond the largest frame. */
export function encodeRawFrame(h: RawFrameHeader, records: readonly RawRecord[]): Buffer {
  const total = rawFrameBytes(h, records);
  if (total > MAX_FRAME_BYTES) throw new RangeError(`frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
  if (records.length === 0) throw new RangeError('a frame needs at least one record');
  const w = new FrameWriter(Buffer.allocUnsafe(total), h);
  for (const r of records) {
    w.beginRecord(r.type, !!r.compressed, r.offset, r.lengthBytes);
    if (Buffer.isBuffer(r.payload)) w.put(r.payload);
    else w.at = writePieces(r.payload as readonly Piece[], w.out, w.at);
    w.endRecord();
  }
  return w.finish();
}
