/**
 * One unit of a scan: up to UNIT_BLOCKS consecutive 64 KiB blocks read, hashed and compared
 * with what the manifest knew of them. Runs in a scan thread (scan-worker.ts); the types here
 * are the messages between that thread and the agent.
 *
 * Reads are small and synchronous on purpose: a 512 KiB piece is still in the CPU cache when
 * its blocks are hashed, which makes read + hash of a cached disk about twice as fast as large
 * reads through the thread pool; the kernel's readahead keeps a cold sequential read flowing.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { BLOCK_HASH_BYTES, blockHashInto } from '../core/hash.ts';
import { BLOCK_BYTES } from './manifest.ts';

export { BLOCK_BYTES };
/** Blocks per unit (8 MiB): the work a scan thread takes at a time. */
export const UNIT_BLOCKS = 128;
/** Blocks per read: small enough to stay in the CPU cache until hashed. */
const READ_BLOCKS = 8;

/** What became of each block of a unit. */
export const BlockKind = {
  /** Same hash as the manifest's: nothing to send. */
  UNCHANGED: 0,
  /** Changed: its bytes are in the result's `data`. */
  DATA: 1,
  /** Changed to all zeros: a ZERO record. */
  ZERO: 2,
  /** All zeros where the manifest knew nothing and zeros may be skipped: only the manifest moves. */
  SKIPPED_ZERO: 3,
} as const;

export interface UnitRequest {
  id: number;
  path: string;
  sizeBytes: number;
  firstBlock: number;
  count: number;
  /** The manifest's entries for these blocks (count × 16 bytes; all zero = unknown). */
  known: Uint8Array;
  skipZeroBlocks: boolean;
  /** Shared memory (UNIT_BYTES) to read into; the agent lends it until it answers, or longer when the answer's data is in it. */
  slot: SharedArrayBuffer;
  slotIndex: number;
}

export interface UnitResult {
  id: number;
  firstBlock: number;
  count: number;
  /** Every block's xxh128 (count × 16 bytes). */
  hashes: Uint8Array;
  /** BlockKind per block. */
  kinds: Uint8Array;
  /**
   * The bytes of the DATA blocks; `dataAt[i]` is where block i's begin (-1 for the others).
   * When most blocks changed, these are the request's slot itself, which stays lent out until
   * the agent no longer refers to them; otherwise a copy, and the slot is free again.
   */
  data: Uint8Array;
  dataAt: Int32Array;
  /** The request's slot, and whether `data` is in it. */
  slotIndex: number;
  inSlot: boolean;
}

export type UnitReply = UnitResult | { id: number; error: string };

/** Bytes of a unit's read buffer. */
export const UNIT_BYTES = UNIT_BLOCKS * BLOCK_BYTES;

const ZERO_BLOCK = new Uint8Array(BLOCK_BYTES);

/** Bytes a scan thread reads at a time (its private read buffer). */
export const READ_BYTES = READ_BLOCKS * BLOCK_BYTES;

/**
 * Reads and judges one unit. Reads go into `piece` (READ_BYTES of the thread's own memory):
 * copying out of shared memory is much slower in V8 than out of private memory, and hashing
 * copies every byte into the hasher's memory. Only changed blocks are copied into the slot.
 */
export function scanUnit(req: UnitRequest, piece: Buffer): UnitResult {
  const { firstBlock, count, sizeBytes } = req;
  const scratch = Buffer.from(req.slot);
  const hashes = Buffer.allocUnsafe(count * BLOCK_HASH_BYTES);
  const kinds = new Uint8Array(count);
  const fd = openSync(req.path, 'r');
  try {
    for (let first = 0; first < count; first += READ_BLOCKS) {
      const n = Math.min(READ_BLOCKS, count - first);
      const offset = (firstBlock + first) * BLOCK_BYTES;
      const want = Math.min(n * BLOCK_BYTES, sizeBytes - offset);
      const got = readFully(fd, piece, 0, want, offset);
      if (got < want) piece.fill(0, got, want);
      for (let i = first; i < first + n; i++) {
        const len = blockBytes(firstBlock + i, sizeBytes);
        const block = piece.subarray((i - first) * BLOCK_BYTES, (i - first) * BLOCK_BYTES + len);
        blockHashInto(block, hashes, i * BLOCK_HASH_BYTES);
        const known = req.known.subarray(i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES);
        if (hashes.compare(known, 0, BLOCK_HASH_BYTES, i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES) === 0) continue;
        if (!block.equals(ZERO_BLOCK.subarray(0, len))) {
          kinds[i] = BlockKind.DATA;
          block.copy(scratch, i * BLOCK_BYTES);
        } else kinds[i] = req.skipZeroBlocks && isUnknown(known) ? BlockKind.SKIPPED_ZERO : BlockKind.ZERO;
      }
    }
  } finally {
    closeSync(fd);
  }
  const dataAt = new Int32Array(count).fill(-1);
  let dataBlocks = 0;
  for (let i = 0; i < count; i++) if (kinds[i] === BlockKind.DATA) dataBlocks++;
  if (dataBlocks * 2 >= count) {
    // Mostly changed (an initial sync): the bytes stay in the slot instead of being copied.
    for (let i = 0; i < count; i++) if (kinds[i] === BlockKind.DATA) dataAt[i] = i * BLOCK_BYTES;
    const data = new Uint8Array(req.slot, 0, Math.min(count * BLOCK_BYTES, sizeBytes - firstBlock * BLOCK_BYTES));
    return { id: req.id, firstBlock, count, hashes, kinds, data, dataAt, slotIndex: req.slotIndex, inSlot: true };
  }
  // Unpooled, so that it can be transferred.
  const data = Buffer.allocUnsafeSlow(dataBlocks * BLOCK_BYTES);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (kinds[i] !== BlockKind.DATA) continue;
    const len = blockBytes(firstBlock + i, sizeBytes);
    scratch.copy(data, at, i * BLOCK_BYTES, i * BLOCK_BYTES + len);
    dataAt[i] = at;
    at += len;
  }
  return { id: req.id, firstBlock, count, hashes, kinds, data: data.subarray(0, at), dataAt, slotIndex: req.slotIndex, inSlot: false };
}

/** Bytes of block `block` of a disk of `sizeBytes` (the last may be short). */
export function blockBytes(block: number, sizeBytes: number): number {
  return Math.min(BLOCK_BYTES, sizeBytes - block * BLOCK_BYTES);
}

function isUnknown(entry: Uint8Array): boolean {
  for (let i = 0; i < entry.length; i++) if (entry[i] !== 0) return false;
  return true;
}

function readFully(fd: number, buf: Buffer, at: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, at + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
