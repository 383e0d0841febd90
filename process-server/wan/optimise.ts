/**
 * What crosses the WAN: spooled frames merged into one batch and re-encoded for the link to
 * the master target (docs/wan-optimisation.md). Each write is cut into pieces at 64 KiB
 * boundaries of the disk; a zero piece is sent as ZERO, a piece the master target already
 * holds (or that came earlier in the same batch) as a reference by SHA-256, and the rest
 * LZ4-compressed where that pays, whatever the agent sent. Sequence numbers and record
 * boundaries never change.
 *
 * One pass writes the batch into one pooled buffer: frames are merged and re-encoded at once,
 * pieces are compressed straight into place, and nothing is checked twice (the spooled
 * frames' checksums were verified as they were read back).
 */
import type { BufferPool } from '../../core/buffer-pool.ts';
import { compressInto, decompressInto } from '../../core/lz4.ts';
import { CHECKSUM_BYTES, FRAME_VERSION, FRAME_VERSION_PIECES, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, RecordType, type DecodedFrame, type StoredRecord } from '../../core/wire/frame.ts';
import { FrameWriter, frameHeadBytes } from '../../core/wire/frame-writer.ts';
import { CONTENT_HASH_BYTES, contentHash, hashName, PIECE_BLOCK_BYTES, PIECE_HEADER_BYTES, PieceKind, writePieceHead } from '../../core/wire/pieces.ts';
import type { HeldBlocks } from './held-blocks.ts';

/**
 * Writes shorter than this stay plain WRITE records (zeros still become ZERO, and they are
 * still compressed where that pays). A short write seldom repeats a block the master target
 * holds, and hashing it cost the process server about 14 µs a 4 KiB write (a tenth of its
 * time on 4 KiB random writes).
 */
export const MIN_PIECES_BYTES = 16 * 1024;
/** A resolved batch must fit in one frame at the master target; leave room for headers. */
const MAX_RESOLVED_BYTES = MAX_FRAME_BYTES - 1024 * 1024;
/** Most bytes a piece adds to the data it carries (header, hash, compressed length). */
const PIECE_OVERHEAD_BYTES = PIECE_HEADER_BYTES + CONTENT_HASH_BYTES + 4;

const ZERO_BLOCK = Buffer.alloc(PIECE_BLOCK_BYTES);

/** Consecutive spooled frames of one stream to send as one batch. */
export interface SpooledBatch {
  /** Verified, consecutive, mergeable frames (core/wire/merge.ts), records decoded as views. */
  frames: readonly DecodedFrame[];
  /** First seq to send: within the first frame (the master target holds what is before). */
  fromSeq: number;
}

export interface OptimiseOptions {
  /** Re-encode at all (zeros, references, compression); without it, records go as spooled. */
  optimise: boolean;
  /** The master target reads version 2 frames (references and pieces). */
  pieces: boolean;
  /** Blocks the master target holds (needed with `pieces`). */
  held?: HeldBlocks;
  /** Hashes to send as data even if held (the master target said it lacks them). */
  forceData?: ReadonlySet<string>;
  /** Where the frame's buffer comes from. */
  pool: BufferPool;
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
  /** The frame: a view of a buffer from the pool, to give back once sent. */
  frame: Buffer;
  version: number;
  firstSeq: number;
  lastSeq: number;
  /** Source time of the last record. */
  timeMs: number;
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

function isZero(b: Uint8Array): boolean {
  for (let at = 0; at < b.length; at += ZERO_BLOCK.length) {
    const n = Math.min(b.length - at, ZERO_BLOCK.length);
    if (!ZERO_BLOCK.subarray(0, n).equals(b.subarray(at, at + n))) return false;
  }
  return true;
}

/** The records of the batch, in seq order, from `fromSeq` on. */
function* recordsOf(b: SpooledBatch): Generator<StoredRecord> {
  for (const f of b.frames) for (const r of f.records) if (r.seq >= b.fromSeq) yield r;
}

/** Pieces a write at `offset` of `lengthBytes` is cut into. */
function blockCount(offset: number, lengthBytes: number): number {
  return Math.floor((offset + lengthBytes - 1) / PIECE_BLOCK_BYTES) - Math.floor(offset / PIECE_BLOCK_BYTES) + 1;
}

/** Encodes a batch for the WAN into a buffer from `o.pool`. */
export function optimiseBatch(b: SpooledBatch, o: OptimiseOptions): Optimised {
  const first = b.frames[0].header;
  const last = b.frames[b.frames.length - 1].header;
  const head = frameHeadBytes(first) + CHECKSUM_BYTES;
  // Room for the worst case: every write sent whole as data pieces.
  let bound = head;
  let resolved = head;
  for (const r of recordsOf(b)) {
    const whole = r.type === RecordType.WRITE ? Math.max(r.payload.length, r.lengthBytes) + PIECE_OVERHEAD_BYTES * blockCount(r.offset, r.lengthBytes) : r.payload.length;
    bound += RECORD_HEADER_BYTES + whole;
    resolved += RECORD_HEADER_BYTES + (r.type === RecordType.WRITE ? r.lengthBytes : r.payload.length);
  }
  // Too much for the master target to expand at once: plain records, still compressed.
  const pieces = o.optimise && o.pieces && resolved <= MAX_RESOLVED_BYTES;
  const buf = o.pool.acquire(bound);
  try {
    const w = new FrameWriter(buf, { version: FRAME_VERSION, flags: first.flags, firstSeq: b.fromSeq, timeMs: last.timeMs, diskBytes: last.diskBytes, machine: first.machine, disk: first.disk });
    const ctx: Context = { w, o, pieces, stats: emptyStats(), hashes: [], inBatch: new Set(), usesPieces: false };
    for (const r of recordsOf(b)) {
      if (r.type !== RecordType.WRITE || !o.optimise) {
        if (r.type === RecordType.ZERO || r.type === RecordType.TRIM || r.type === RecordType.WRITE) ctx.stats.changedBytes += r.lengthBytes;
        w.record(r.type, r.compressed, r.offset, r.lengthBytes, r.payload);
        continue;
      }
      ctx.stats.changedBytes += r.lengthBytes;
      writeRecord(ctx, r);
    }
    const version = ctx.usesPieces ? FRAME_VERSION_PIECES : FRAME_VERSION;
    w.setVersion(version);
    const frame = w.finish();
    ctx.stats.wireBytes = frame.length;
    return { frame, version, firstSeq: b.fromSeq, lastSeq: b.fromSeq + w.records - 1, timeMs: last.timeMs, hashes: ctx.usesPieces ? ctx.hashes : [], stats: ctx.stats };
  } catch (e) {
    o.pool.release(buf);
    throw e;
  }
}

interface Context {
  w: FrameWriter;
  o: OptimiseOptions;
  /** Writes may become PIECES records. */
  pieces: boolean;
  stats: WanStats;
  hashes: string[];
  inBatch: Set<string>;
  usesPieces: boolean;
}

/** One WRITE record, re-encoded. */
function writeRecord(ctx: Context, r: StoredRecord): void {
  // A compressed write is looked at decompressed: zeros and pieces need the bytes.
  const scratch = r.compressed ? ctx.o.pool.acquire(r.lengthBytes) : undefined;
  try {
    if (scratch) decompressInto(r.payload, r.lengthBytes, scratch, 0);
    const data = scratch ?? r.payload;
    if (ctx.pieces && r.lengthBytes >= MIN_PIECES_BYTES) piecesRecord(ctx, r, data);
    else plainWrite(ctx, r, data);
  } finally {
    if (scratch) ctx.o.pool.release(scratch);
  }
}

/** A WRITE kept whole: ZERO when it is all zeros, else compressed where that pays. */
function plainWrite(ctx: Context, r: StoredRecord, data: Uint8Array): void {
  const { w, stats } = ctx;
  if (isZero(data)) {
    stats.zeroBytes += r.lengthBytes;
    w.record(RecordType.ZERO, false, r.offset, r.lengthBytes);
    return;
  }
  if (r.compressed) {
    w.record(RecordType.WRITE, true, r.offset, r.lengthBytes, r.payload);
    return;
  }
  w.beginRecord(RecordType.WRITE, false, r.offset, r.lengthBytes);
  const packed = compressInto(data, w.out, w.at);
  if (packed === undefined) w.put(data);
  else {
    w.at += packed;
    w.retype(RecordType.WRITE, true);
  }
  w.endRecord();
}

/** Cuts one write at 64 KiB boundaries of the disk and writes each piece; all zeros becomes a ZERO record. */
function piecesRecord(ctx: Context, r: StoredRecord, data: Uint8Array): void {
  const { w, o, stats } = ctx;
  const out = w.out;
  const single = blockCount(r.offset, r.lengthBytes) === 1;
  w.beginRecord(RecordType.PIECES, false, r.offset, r.lengthBytes);
  let nonZero = false;
  const hashesBefore = ctx.hashes.length;
  for (let at = 0; at < data.length; ) {
    const end = Math.min(data.length, (Math.floor((r.offset + at) / PIECE_BLOCK_BYTES) + 1) * PIECE_BLOCK_BYTES - r.offset);
    const block = data.subarray(at, end);
    at = end;
    if (isZero(block)) {
      stats.zeroBytes += block.length;
      w.at = writePieceHead(out, w.at, PieceKind.ZERO, block.length);
      continue;
    }
    nonZero = true;
    const hash = contentHash(block);
    const name = hashName(hash);
    ctx.hashes.push(name);
    if (ctx.inBatch.has(name) || (!o.forceData?.has(name) && !!o.held?.has(name))) {
      stats.referencedBytes += block.length;
      w.at = writePieceHead(out, w.at, PieceKind.REF, block.length, hash);
      continue;
    }
    ctx.inBatch.add(name);
    const pieceAt = w.at;
    const lenAt = writePieceHead(out, pieceAt, PieceKind.LZ4, block.length, hash);
    // The agent's own compression of a one-block write is kept: no second pass.
    const packed = single && r.compressed ? (out.set(r.payload, lenAt + 4), r.payload.length) : compressInto(block, out, lenAt + 4);
    if (packed !== undefined) {
      out.writeUInt32BE(packed, lenAt);
      w.at = lenAt + 4 + packed;
    } else {
      const dataAt = writePieceHead(out, pieceAt, PieceKind.DATA, block.length, hash);
      out.set(block, dataAt);
      w.at = dataAt + block.length;
    }
  }
  if (!nonZero) {
    ctx.hashes.length = hashesBefore;
    w.cancelRecord();
    w.record(RecordType.ZERO, false, r.offset, r.lengthBytes);
    return;
  }
  ctx.usesPieces = true;
  w.endRecord();
}
