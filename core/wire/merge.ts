/**
 * Joins consecutive frames of one stream into one frame, records kept exactly as stored
 * (compressed payloads are not touched), optionally without records below a seq. Used where
 * many small batches would each cost the receiver a round of fsyncs.
 */
import { decodeFrame, FRAME_VERSION, type DecodedFrame } from './frame.ts';
import { encodeRawFrame } from './raw-frame.ts';

/** Whether `b` may follow `a` in one merged frame: same stream, kind and disk size, no gap. */
export function mergeable(a: DecodedFrame['header'], b: DecodedFrame['header']): boolean {
  return a.machine === b.machine && a.disk === b.disk && a.flags === b.flags && a.diskBytes === b.diskBytes && b.firstSeq === a.lastSeq + 1;
}

/**
 * Merges frames (checked, consecutive, `mergeable`) into one starting at `fromSeq`, which must
 * lie within the first frame. The merged frame takes the last frame's time.
 */
export function mergeFrames(frames: Buffer[], fromSeq: number): Buffer {
  return mergeDecoded(frames.map(decodeFrame), fromSeq);
}

/** `mergeFrames` of frames already checked and split into records. */
export function mergeDecoded(decoded: readonly DecodedFrame[], fromSeq: number): Buffer {
  const first = decoded[0].header;
  const last = decoded[decoded.length - 1].header;
  for (let i = 1; i < decoded.length; i++) {
    if (!mergeable(decoded[i - 1].header, decoded[i].header)) throw new RangeError(`frame ${i} cannot follow frame ${i - 1} in one batch`);
  }
  if (fromSeq < first.firstSeq || fromSeq > first.lastSeq) throw new RangeError(`seq ${fromSeq} is not in the first frame`);
  const records = decoded.flatMap((d) => d.records).filter((r) => r.seq >= fromSeq);
  return encodeRawFrame({ version: FRAME_VERSION, flags: first.flags, firstSeq: fromSeq, timeMs: last.timeMs, diskBytes: last.diskBytes, machine: first.machine, disk: first.disk }, records);
}
