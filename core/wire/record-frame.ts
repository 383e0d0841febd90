/**
 * One-record frames of one stream, made without copying the payload (docs/wire-format.md,
 * "Batch frame"): the tap agent logs every write as such a frame on its hot path. The fixed
 * part of the header (magic, version, names) is built once; a frame is its head (header,
 * names, record header), the payload as given, and the checksum, written with one writev.
 * The bytes equal what `encodeFrame` makes for the same single uncompressed record.
 */
import { xxh64Of } from '../hash.ts';
import { putU64, getU64 } from '../u64.ts';
import { CHECKSUM_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION, RECORD_HEADER_BYTES, RecordType } from './frame.ts';

/** What a log needs to know of a frame without parsing it. */
export interface FrameMeta {
  firstSeq: number;
  lastSeq: number;
  timeMs: number;
  flags: number;
  /** Length of the whole frame. */
  bytes: number;
}

export interface RecordFrame extends FrameMeta {
  /** Header, names and record header. */
  head: Buffer;
  /** The payload (WRITE data), not copied; empty for ZERO and TRIM. */
  payload: Buffer;
  checksum: Buffer;
}

const EMPTY = Buffer.alloc(0);

export class RecordFrameEncoder {
  private readonly prefix: Buffer;

  constructor(machine: string, disk: string, diskBytes: number) {
    const m = Buffer.from(machine, 'utf8');
    const d = Buffer.from(disk, 'utf8');
    if (m.length === 0 || m.length > 255 || d.length === 0 || d.length > 255) throw new RangeError('machine and disk names must be 1-255 bytes');
    this.prefix = Buffer.alloc(FRAME_HEADER_BYTES + m.length + d.length);
    FRAME_MAGIC.copy(this.prefix, 0);
    this.prefix.writeUInt16BE(FRAME_VERSION, 4);
    putU64(this.prefix, 32, diskBytes);
    this.prefix.writeUInt32BE(1, 40);
    this.prefix.writeUInt8(m.length, 48);
    this.prefix.writeUInt8(d.length, 49);
    m.copy(this.prefix, FRAME_HEADER_BYTES);
    d.copy(this.prefix, FRAME_HEADER_BYTES + m.length);
  }

  /** Bytes of a frame holding one record with `payloadBytes` of payload. */
  frameBytes(payloadBytes: number): number {
    return this.prefix.length + RECORD_HEADER_BYTES + payloadBytes + CHECKSUM_BYTES;
  }

  /**
   * A frame of one WRITE (with `data`), ZERO, TRIM or HELD record at `seq` (a HELD record
   * names the range only). With `into`, the whole
   * frame is written there at `at` (the payload copied) and `head` is a view of it.
   */
  encode(seq: number, timeMs: number, flags: number, type: RecordType.WRITE | RecordType.ZERO | RecordType.TRIM | RecordType.HELD, offset: number, lengthBytes: number, data?: Buffer, into?: { buf: Buffer; at: number }): RecordFrame {
    const payload = type === RecordType.WRITE ? data! : EMPTY;
    const headBytes = this.prefix.length + RECORD_HEADER_BYTES;
    const bytes = headBytes + payload.length + CHECKSUM_BYTES;
    const head = into ? into.buf.subarray(into.at, into.at + headBytes) : Buffer.allocUnsafe(headBytes);
    this.prefix.copy(head, 0);
    head.writeUInt16BE(flags, 6);
    putU64(head, 8, seq);
    putU64(head, 16, seq);
    putU64(head, 24, Math.trunc(timeMs));
    head.writeUInt32BE(bytes, 44);
    const r = this.prefix.length;
    head.writeUInt32BE(type << 24, r);
    head.writeUInt32BE(payload.length, r + 4);
    putU64(head, r + 8, offset);
    head.writeUInt32BE(lengthBytes, r + 16);
    head.writeUInt32BE(0, r + 20);
    let checksum: Buffer;
    if (into) {
      payload.copy(into.buf, into.at + headBytes);
      const end = into.at + headBytes + payload.length;
      checksum = into.buf.subarray(end, end + CHECKSUM_BYTES);
      xxh64Of(into.buf.subarray(into.at, end)).copy(checksum);
    } else checksum = xxh64Of(head, payload);
    return { head, payload, checksum, firstSeq: seq, lastSeq: seq, timeMs: Math.trunc(timeMs), flags, bytes };
  }
}

/**
 * The range of a one-record frame's HELD record (a tap change log's write held by the disk),
 * or undefined when the frame holds anything else. The frame is assumed verified.
 */
export function heldRecordOf(frame: Buffer): { seq: number; offset: number; lengthBytes: number } | undefined {
  if (frame.readUInt32BE(40) !== 1) return undefined;
  const r = FRAME_HEADER_BYTES + frame.readUInt8(48) + frame.readUInt8(49);
  if (frame.readUInt8(r) !== RecordType.HELD) return undefined;
  return { seq: getU64(frame, 8), offset: getU64(frame, r + 8), lengthBytes: frame.readUInt32BE(r + 16) };
}
