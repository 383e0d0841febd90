/**
 * Block hashes of a replica's latest applied state (docs/wire-format.md, "Block hashes"): what
 * an agent's resync compares its own blocks with, so that it sends only those that differ.
 * The state is read through a point-in-time reader at the applied seq, so batches applied
 * meanwhile do not show through and the answer names exactly the state it describes.
 */
import { BLOCK_HASH_BYTES, blockHashInto } from '../core/hash.ts';
import { UsageError } from '../core/errors.ts';
import type { DiskStream } from './disk-stream.ts';

/** Version of the block-hash answer. */
export const BLOCK_HASHES_VERSION = 1;
/** Size of a hashed block: the agents' block size. */
export const HASH_BLOCK_BYTES = 64 * 1024;
/** Most blocks one request may ask for (256 MiB of disk, 64 KiB of hashes). */
export const MAX_HASH_BLOCKS = 4096;
/** Bytes read from the replica at a time. */
const READ_BYTES = 1024 * 1024;

export interface BlockHashAnswer {
  version: number;
  /** The state hashed: the disk after records 1..seq. */
  seq: number;
  diskBytes: number;
  blockBytes: number;
  hash: 'xxh128';
  /** First block hashed, and how many (fewer than asked where the disk ends). */
  first: number;
  count: number;
  /** `count` hashes of 16 bytes, back to back, base64. A short last block's hash covers the bytes the disk has. */
  hashes: string;
}

/** Checks a request's block range. */
export function parseBlockRange(firstText: string | undefined, countText: string | undefined): { first: number; count: number } {
  const num = (name: string, v: string | undefined) => {
    if (v === undefined || !/^\d{1,15}$/.test(v)) throw new UsageError(`query parameter ${name} must be a non-negative integer, got ${JSON.stringify(v ?? null)}`);
    return Number(v);
  };
  const first = num('first', firstText);
  const count = num('count', countText);
  if (count < 1 || count > MAX_HASH_BLOCKS) throw new UsageError(`count must be 1..${MAX_HASH_BLOCKS}, got ${count}`, { hint: 'ask for the disk in several ranges' });
  return { first, count };
}

/** Hashes blocks `first`..`first + count - 1` of the stream's latest applied state. */
export async function replicaBlockHashes(stream: DiskStream, first: number, count: number): Promise<BlockHashAnswer> {
  const seq = stream.nextSeq - 1;
  const reader = stream.openReader(seq);
  try {
    const diskBytes = reader.sizeBytes;
    const diskBlocks = Math.ceil(diskBytes / HASH_BLOCK_BYTES);
    const n = Math.max(0, Math.min(count, diskBlocks - first));
    const out = Buffer.alloc(n * BLOCK_HASH_BYTES);
    const buf = Buffer.allocUnsafe(READ_BYTES);
    for (let b = 0; b < n; ) {
      const offset = (first + b) * HASH_BLOCK_BYTES;
      const bytes = Math.min(READ_BYTES, (n - b) * HASH_BLOCK_BYTES, diskBytes - offset);
      const chunk = buf.subarray(0, bytes);
      await reader.readInto(chunk, offset);
      for (let at = 0; at < bytes; at += HASH_BLOCK_BYTES, b++) {
        blockHashInto(chunk.subarray(at, Math.min(bytes, at + HASH_BLOCK_BYTES)), out, b * BLOCK_HASH_BYTES);
      }
    }
    return { version: BLOCK_HASHES_VERSION, seq, diskBytes, blockBytes: HASH_BLOCK_BYTES, hash: 'xxh128', first, count: n, hashes: out.toString('base64') };
  } finally {
    await reader.close();
  }
}
