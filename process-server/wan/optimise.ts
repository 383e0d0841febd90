/**
 * What crosses the WAN: a spooled batch re-encoded for the link to the master target
 * (docs/wan-optimisation.md). Each write is cut into pieces at 64 KiB boundaries of the disk;
 * a zero piece is sent as ZERO, a piece the master target already holds (or that came
 * earlier in the same batch) as a reference by SHA-256, and the rest LZ4-compressed where
 * that pays, whatever the agent sent. Sequence numbers and record boundaries never change.
 */
import { compressIfWorthwhile } from '../../core/lz4.ts';
import { decodeFrame, recordData, FRAME_VERSION, FRAME_VERSION_PIECES, MAX_FRAME_BYTES, RecordType, type StoredRecord } from '../../core/wire/frame.ts';
import { contentHash, hashName, PIECE_BLOCK_BYTES, PieceKind, type Piece } from '../../core/wire/pieces.ts';
import { encodeRawFrame, type RawRecord } from '../../core/wire/raw-frame.ts';
import type { HeldBlocks } from './held-blocks.ts';

/** Writes shorter than this stay plain WRITE records: a hash and piece header would cost more than dedupe saves. */
export const MIN_PIECES_BYTES = 4096;
/** A resolved batch must fit in one frame at the master target; leave room for headers. */
const MAX_RESOLVED_BYTES = MAX_FRAME_BYTES - 1024 * 1024;

const ZERO_BLOCK = Buffer.alloc(PIECE_BLOCK_BYTES);

export interface OptimiseOptions {
  /** The master target reads version 2 frames (references and pieces). */
  pieces: boolean;
  held: HeldBlocks;
  /** Hashes to send as data even if held (the master target said it lacks them). */
  forceData?: ReadonlySet<string>;
}

/** What one batch cost and saved, for metrics and the benchmark. */
export interface WanStats {
  /** Disk bytes the batch's writes and zero ranges cover. */
  changedBytes: number;
  /** Bytes of the frame as it leaves. */
  wireBytes: number;
  /** Bytes sent as references instead of data. */
  referencedBytes: number;
  /** Bytes sent as ZERO instead of data. */
  zeroBytes: number;
}

export interface Optimised {
  frame: Buffer;
  version: number;
  /** Hashes of the blocks the master target holds once it acknowledges this batch. */
  hashes: string[];
  stats: WanStats;
}

export function emptyStats(): WanStats {
  return { changedBytes: 0, wireBytes: 0, referencedBytes: 0, zeroBytes: 0 };
}

export function addStats(into: WanStats, s: WanStats): void {
  into.changedBytes += s.changedBytes;
  into.wireBytes += s.wireBytes;
  into.referencedBytes += s.referencedBytes;
  into.zeroBytes += s.zeroBytes;
}

function isZero(b: Buffer): boolean {
  for (let at = 0; at < b.length; at += ZERO_BLOCK.length) {
    const part = b.subarray(at, Math.min(b.length, at + ZERO_BLOCK.length));
    if (!part.equals(ZERO_BLOCK.subarray(0, part.length))) return false;
  }
  return true;
}

/** Re-encodes a checked version 1 frame for the WAN. */
export function optimiseFrame(frame: Buffer, o: OptimiseOptions): Optimised {
  const { header, records } = decodeFrame(frame);
  const stats = emptyStats();
  const hashes: string[] = [];
  const inBatch = new Set<string>();
  let usesPieces = false;
  let resolvedBytes = 0;
  const out: RawRecord[] = records.map((r) => {
    resolvedBytes += r.payload.length;
    if (r.type === RecordType.ZERO || r.type === RecordType.TRIM) stats.changedBytes += r.lengthBytes;
    if (r.type !== RecordType.WRITE) return { type: r.type, offset: r.offset, lengthBytes: r.lengthBytes, payload: r.payload };
    stats.changedBytes += r.lengthBytes;
    const data = recordData(r);
    if (!o.pieces || r.lengthBytes < MIN_PIECES_BYTES) return plainWrite(r, data, stats);
    const pieces = cut(r, data, o, inBatch, hashes, stats);
    if (pieces.every((p) => p.kind === PieceKind.ZERO)) return { type: RecordType.ZERO, offset: r.offset, lengthBytes: r.lengthBytes, payload: EMPTY };
    usesPieces = true;
    resolvedBytes += r.lengthBytes - r.payload.length;
    return { type: RecordType.PIECES, offset: r.offset, lengthBytes: r.lengthBytes, payload: pieces };
  });
  if (usesPieces && resolvedBytes > MAX_RESOLVED_BYTES) {
    // Too much for the master target to expand at once: plain records, still compressed.
    return optimiseFrame(frame, { ...o, pieces: false });
  }
  const version = usesPieces ? FRAME_VERSION_PIECES : FRAME_VERSION;
  const encoded = encodeRawFrame({ ...header, version }, out);
  stats.wireBytes = encoded.length;
  return { frame: encoded, version, hashes: usesPieces ? hashes : [], stats };
}

const EMPTY = Buffer.alloc(0);

/** A WRITE kept whole: ZERO when it is all zeros, else compressed where that pays. */
function plainWrite(r: StoredRecord, data: Buffer, stats: WanStats): RawRecord {
  if (isZero(data)) {
    stats.zeroBytes += r.lengthBytes;
    return { type: RecordType.ZERO, offset: r.offset, lengthBytes: r.lengthBytes, payload: EMPTY };
  }
  if (r.compressed) return { type: RecordType.WRITE, compressed: true, offset: r.offset, lengthBytes: r.lengthBytes, payload: r.payload };
  const packed = compressIfWorthwhile(data);
  return { type: RecordType.WRITE, compressed: !!packed, offset: r.offset, lengthBytes: r.lengthBytes, payload: packed ?? data };
}

/** Cuts one write at 64 KiB boundaries of the disk and encodes each piece. */
function cut(r: StoredRecord, data: Buffer, o: OptimiseOptions, inBatch: Set<string>, hashes: string[], stats: WanStats): Piece[] {
  const pieces: Piece[] = [];
  const single = Math.floor(r.offset / PIECE_BLOCK_BYTES) === Math.floor((r.offset + r.lengthBytes - 1) / PIECE_BLOCK_BYTES);
  for (let at = 0; at < data.length; ) {
    const end = Math.min(data.length, (Math.floor((r.offset + at) / PIECE_BLOCK_BYTES) + 1) * PIECE_BLOCK_BYTES - r.offset);
    const block = data.subarray(at, end);
    at = end;
    if (block.equals(ZERO_BLOCK.subarray(0, block.length))) {
      stats.zeroBytes += block.length;
      pieces.push({ kind: PieceKind.ZERO, lengthBytes: block.length });
      continue;
    }
    const hash = contentHash(block);
    const name = hashName(hash);
    hashes.push(name);
    if (inBatch.has(name) || (!o.forceData?.has(name) && o.held.has(name))) {
      stats.referencedBytes += block.length;
      pieces.push({ kind: PieceKind.REF, lengthBytes: block.length, hash });
      continue;
    }
    inBatch.add(name);
    // The agent's own compression of a one-block write is kept: no second pass.
    const packed = single && r.compressed ? r.payload : compressIfWorthwhile(block);
    pieces.push(packed ? { kind: PieceKind.LZ4, lengthBytes: block.length, hash, packed } : { kind: PieceKind.DATA, lengthBytes: block.length, hash, data: block });
  }
  return pieces;
}
