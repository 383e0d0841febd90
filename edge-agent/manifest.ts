/**
 * The block-hash manifest of one disk: what the agent knows the replica holds, one xxh128 per
 * 64 KiB block. Entries change only after the process server acknowledged the data, so a
 * restart resends nothing that arrived. Format: docs/agent-state.md.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BLOCK_HASH_BYTES } from '../core/hash.ts';
import { writevAll } from '../core/file-io.ts';

export const BLOCK_BYTES = 64 * 1024;
const MAGIC = Buffer.from('TMMF', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 32;
/** An all-zero entry means "unknown": the block must be sent (or is still to be synced). */
const UNKNOWN = Buffer.alloc(BLOCK_HASH_BYTES);

export class Manifest {
  private constructor(private readonly fh: FileHandle, readonly blockCount: number, private readonly hashes: Buffer) {}

  /** Opens the manifest for a disk of `diskBytes`, starting over if it was made for another size. */
  static async open(path: string, diskBytes: number): Promise<{ manifest: Manifest; fresh: boolean }> {
    const blockCount = Math.ceil(diskBytes / BLOCK_BYTES);
    const fh = await open(path, 'a+').then(async (h) => {
      await h.close();
      return open(path, 'r+');
    });
    const size = (await fh.stat()).size;
    const hashes = Buffer.alloc(blockCount * BLOCK_HASH_BYTES);
    const header = Buffer.alloc(HEADER_BYTES);
    let fresh = true;
    if (size === HEADER_BYTES + hashes.length) {
      await fh.read(header, 0, HEADER_BYTES, 0);
      if (header.subarray(0, 4).equals(MAGIC) && header.readUInt16BE(4) === VERSION && header.readUInt32BE(8) === BLOCK_BYTES && Number(header.readBigUInt64BE(16)) === diskBytes) {
        await fh.read(hashes, 0, hashes.length, HEADER_BYTES);
        fresh = false;
      }
    }
    const m = new Manifest(fh, blockCount, hashes);
    if (fresh) await m.reset(diskBytes);
    return { manifest: m, fresh };
  }

  /** Forgets everything: every block becomes unknown. */
  async reset(diskBytes: number): Promise<void> {
    this.hashes.fill(0);
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt16BE(VERSION, 4);
    header.writeUInt32BE(BLOCK_BYTES, 8);
    header.writeBigUInt64BE(BigInt(diskBytes), 16);
    await this.fh.truncate(0);
    await writevAll(this.fh, [header, this.hashes], 0);
    await this.fh.sync();
  }

  /** Takes the replica's own hashes for every block (`blockCount` digests back to back), durably. */
  async adopt(hashes: Buffer): Promise<void> {
    if (hashes.length !== this.hashes.length) throw new Error(`manifest expects ${this.blockCount} block hashes, got ${hashes.length / BLOCK_HASH_BYTES}`);
    hashes.copy(this.hashes);
    await writevAll(this.fh, [this.hashes], HEADER_BYTES);
    await this.fh.sync();
  }

  matches(block: number, hash: Buffer): boolean {
    return this.hashes.compare(hash, 0, BLOCK_HASH_BYTES, block * BLOCK_HASH_BYTES, (block + 1) * BLOCK_HASH_BYTES) === 0;
  }

  /** A copy of the entries of blocks [first, first + count). */
  entries(first: number, count: number): Uint8Array {
    return new Uint8Array(this.hashes.subarray(first * BLOCK_HASH_BYTES, (first + count) * BLOCK_HASH_BYTES));
  }

  isUnknown(block: number): boolean {
    return this.matches(block, UNKNOWN);
  }

  /** Records what the replica now holds for these blocks, durably. */
  async commit(updates: ReadonlyArray<{ block: number; hash: Buffer }>): Promise<void> {
    if (updates.length === 0) return;
    let lo = Infinity;
    let hi = -1;
    for (const u of updates) {
      u.hash.copy(this.hashes, u.block * BLOCK_HASH_BYTES);
      lo = Math.min(lo, u.block);
      hi = Math.max(hi, u.block);
    }
    // One contiguous write covers the batch; a torn write only makes entries wrong, and a wrong
    // entry merely causes its block to be sent again.
    const from = lo * BLOCK_HASH_BYTES;
    const to = (hi + 1) * BLOCK_HASH_BYTES;
    await this.fh.write(this.hashes, from, to - from, HEADER_BYTES + from);
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
