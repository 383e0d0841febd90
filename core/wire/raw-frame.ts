/**
 * Writes a frame from records whose payloads are already encoded: what re-encoders use (the
 * process server's WAN optimiser, the master target's reference resolver). One allocation,
 * one copy of each payload.
 */
import { xxh64Of } from '../hash.ts';
import { CHECKSUM_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, type FrameHeader, type RecordType } from './frame.ts';
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
  const machine = Buffer.from(h.machine, 'utf8');
  const disk = Buffer.from(h.disk, 'utf8');
  const total = rawFrameBytes(h, records);
  if (total > MAX_FRAME_BYTES) throw new RangeError(`frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
  if (records.length === 0) throw new RangeError('a frame needs at least one record');
  const out = Buffer.allocUnsafe(total);
  FRAME_MAGIC.copy(out, 0);
  out.writeUInt16BE(h.version, 4);
  out.writeUInt16BE(h.flags, 6);
  out.writeBigUInt64BE(BigInt(h.firstSeq), 8);
  out.writeBigUInt64BE(BigInt(h.firstSeq + records.length - 1), 16);
  out.writeBigUInt64BE(BigInt(Math.trunc(h.timeMs)), 24);
  out.writeBigUInt64BE(BigInt(h.diskBytes), 32);
  out.writeUInt32BE(records.length, 40);
  out.writeUInt32BE(total, 44);
  out.writeUInt8(machine.length, 48);
  out.writeUInt8(disk.length, 49);
  out.writeUInt16BE(0, 50);
  let at = FRAME_HEADER_BYTES;
  at += machine.copy(out, at);
  at += disk.copy(out, at);
  for (const r of records) {
    out.writeUInt8(r.type, at);
    out.writeUInt8(r.compressed ? 1 : 0, at + 1);
    out.writeUInt16BE(0, at + 2);
    out.writeUInt32BE(payloadBytes(r), at + 4);
    out.writeBigUInt64BE(BigInt(r.offset), at + 8);
    out.writeUInt32BE(r.lengthBytes, at + 16);
    out.writeUInt32BE(0, at + 20);
    at += RECORD_HEADER_BYTES;
    at = Buffer.isBuffer(r.payload) ? at + r.payload.copy(out, at) : writePieces(r.payload as readonly Piece[], out, at);
  }
  xxh64Of(out.subarray(0, at)).copy(out, at);
  return out;
}
