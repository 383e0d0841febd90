/**
 * Writes a frame (docs/wire-format.md, "Batch frame") record by record into a buffer the
 * caller provides, such as one from a pool: for re-encoders whose payloads are made as they go
 * (the WAN optimiser compresses straight into the frame). The buffer must be large enough;
 * the frame is `finish()`'s view of its start.
 */
import { xxh64Of } from '../hash.ts';
import { CHECKSUM_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, type FrameHeader, type RecordType } from './frame.ts';
import { putU64 } from '../u64.ts';

export type FrameWriterHeader = Pick<FrameHeader, 'version' | 'flags' | 'firstSeq' | 'timeMs' | 'diskBytes' | 'machine' | 'disk'>;

/** Bytes a frame's header and names take. */
export function frameHeadBytes(h: Pick<FrameHeader, 'machine' | 'disk'>): number {
  return FRAME_HEADER_BYTES + Buffer.byteLength(h.machine) + Buffer.byteLength(h.disk);
}

export class FrameWriter {
  /** Where the next byte goes. */
  at: number;
  private recordCount = 0;
  /** Start of the open record, or -1. */
  private recordAt = -1;

  constructor(readonly out: Buffer, private readonly h: FrameWriterHeader) {
    const machine = Buffer.from(h.machine, 'utf8');
    const disk = Buffer.from(h.disk, 'utf8');
    if (machine.length === 0 || machine.length > 255 || disk.length === 0 || disk.length > 255) throw new RangeError('machine and disk names must be 1-255 bytes');
    if (!Number.isSafeInteger(h.firstSeq) || h.firstSeq < 1) throw new RangeError('firstSeq must be a positive integer');
    FRAME_MAGIC.copy(out, 0);
    out.writeUInt16BE(h.version, 4);
    out.writeUInt16BE(h.flags, 6);
    putU64(out, 8, h.firstSeq);
    putU64(out, 24, Math.trunc(h.timeMs));
    putU64(out, 32, h.diskBytes);
    out.writeUInt8(machine.length, 48);
    out.writeUInt8(disk.length, 49);
    out.writeUInt16BE(0, 50);
    this.at = FRAME_HEADER_BYTES;
    this.at += machine.copy(out, this.at);
    this.at += disk.copy(out, this.at);
  }

  /** Bytes left in the buffer before the checksum's place. */
  get room(): number {
    return this.out.length - CHECKSUM_BYTES - this.at;
  }

  /** Opens a record; its payload is what is put until `endRecord`. */
  beginRecord(type: RecordType, compressed: boolean, offset: number, lengthBytes: number): void {
    if (this.recordAt >= 0) throw new Error('a record is already open');
    const o = this.out;
    const at = this.at;
    o.writeUInt8(type, at);
    o.writeUInt8(compressed ? 1 : 0, at + 1);
    o.writeUInt16BE(0, at + 2);
    putU64(o, at + 8, offset);
    o.writeUInt32BE(lengthBytes, at + 16);
    o.writeUInt32BE(0, at + 20);
    this.recordAt = at;
    this.at += RECORD_HEADER_BYTES;
  }

  /** Sets the open record's type and LZ4 flag after all (its payload so far stays). */
  retype(type: RecordType, compressed: boolean): void {
    this.out.writeUInt8(type, this.recordAt);
    this.out.writeUInt8(compressed ? 1 : 0, this.recordAt + 1);
  }

  /** Drops the open record and everything put in it. */
  cancelRecord(): void {
    this.at = this.recordAt;
    this.recordAt = -1;
  }

  /** Copies payload bytes in. */
  put(bytes: Uint8Array): void {
    this.out.set(bytes, this.at);
    this.at += bytes.length;
  }

  endRecord(): void {
    this.out.writeUInt32BE(this.at - this.recordAt - RECORD_HEADER_BYTES, this.recordAt + 4);
    this.recordAt = -1;
    this.recordCount++;
  }

  /** A whole record with a payload given at once. */
  record(type: RecordType, compressed: boolean, offset: number, lengthBytes: number, payload?: Uint8Array): void {
    this.beginRecord(type, compressed, offset, lengthBytes);
    if (payload?.length) this.put(payload);
    this.endRecord();
  }

  get records(): number {
    return this.recordCount;
  }

  /** Sets the version written in the header (a writer may learn it only at the end). */
  setVersion(version: number): void {
    this.out.writeUInt16BE(version, 4);
  }

  /** Writes the counts and the checksum; returns the frame, a view of the buffer. RangeError beyond the largest frame. */
  finish(): Buffer {
    if (this.recordAt >= 0) throw new Error('a record is still open');
    if (this.recordCount === 0) throw new RangeError('a frame needs at least one record');
    const total = this.at + CHECKSUM_BYTES;
    if (total > MAX_FRAME_BYTES) throw new RangeError(`frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
    const o = this.out;
    putU64(o, 16, this.h.firstSeq + this.recordCount - 1);
    o.writeUInt32BE(this.recordCount, 40);
    o.writeUInt32BE(total, 44);
    o.set(xxh64Of(o.subarray(0, this.at)), this.at);
    return o.subarray(0, total);
  }
}
