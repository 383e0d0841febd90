/**
 * Joins consecutive frames of one stream into one frame, records kept exactly as stored
 * (compressed payloads are not touched), optionally without records below a seq. Used where
 * many small batches would each cost the receiver a round of fsyncs.
 */
import { xxh64Of } from '../hash.ts';
import { decodeFrame, CHECKSUM_BYTES, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, type DecodedFrame } from './frame.ts';

/** Whether `b` may follow `a` in one merged frame: same stream, kind and disk size, no gap. */
export function mergeable(a: DecodedFrame['header'], b: DecodedFrame['header']): boolean {
  return a.machine === b.machine && a.disk === b.disk && a.flags === b.flags && a.diskBytes === b.diskBytes && b.firstSeq === a.lastSeq + 1;
}

/**
 * Merges frames (checked, consecutive, `mergeable`) into one starting at `fromSeq`, which must
 * lie within the first frame. The merged frame takes the last frame's time.
 */
export function mergeFrames(frames: Buffer[], fromSeq: number): Buffer {
  const decoded = frames.map(decodeFrame);
  const first = decoded[0].header;
  const last = decoded[decoded.length - 1].header;
  for (let i = 1; i < decoded.length; i++) {
    if (!mergeable(decoded[i - 1].header, decoded[i].header)) throw new RangeError(`frame ${i} cannot follow frame ${i - 1} in one batch`);
  }
  if (fromSeq < first.firstSeq || fromSeq > first.lastSeq) throw new RangeError(`seq ${fromSeq} is not in the first frame`);
  const machine = Buffer.from(first.machine, 'utf8');
  const disk = Buffer.from(first.disk, 'utf8');
  const records = decoded.flatMap((d) => d.records).filter((r) => r.seq >= fromSeq);
  const total = FRAME_HEADER_BYTES + machine.length + disk.length + records.reduce((n, r) => n + RECORD_HEADER_BYTES + r.payload.length, 0) + CHECKSUM_BYTES;
  if (total > MAX_FRAME_BYTES) throw new RangeError(`merged frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = Buffer.alloc(total);
  FRAME_MAGIC.copy(out, 0);
  out.writeUInt16BE(FRAME_VERSION, 4);
  out.writeUInt16BE(first.flags, 6);
  out.writeBigUInt64BE(BigInt(fromSeq), 8);
  out.writeBigUInt64BE(BigInt(last.lastSeq), 16);
  out.writeBigUInt64BE(BigInt(last.timeMs), 24);
  out.writeBigUInt64BE(BigInt(last.diskBytes), 32);
  out.writeUInt32BE(records.length, 40);
  out.writeUInt32BE(total, 44);
  out.writeUInt8(machine.length, 48);
  out.writeUInt8(disk.length, 49);
  let at = FRAME_HEADER_BYTES;
  at += machine.copy(out, at);
  at += disk.copy(out, at);
  for (const r of records) {
    out.writeUInt8(r.type, at);
    out.writeUInt8(r.compressed ? 1 : 0, at + 1);
    out.writeUInt32BE(r.payload.length, at + 4);
    out.writeBigUInt64BE(BigInt(r.offset), at + 8);
    out.writeUInt32BE(r.lengthBytes, at + 16);
    at += RECORD_HEADER_BYTES;
    at += r.payload.copy(out, at);
  }
  xxh64Of(out.subarray(0, at)).copy(out, at);
  return out;
}
