/**
 * Which 64 KiB blocks changed while the change log was full (or after a host crash), one bit
 * a block, kept in a file. A bit is durable before the write it covers reaches the disk, so
 * no crash can lose the knowledge that a block must be resent.
 */
import { openSync, readSync, fdatasyncSync, fstatSync, ftruncateSync, closeSync } from 'node:fs';
import { writevAllSync } from '../../core/file-io.ts';

export const BITMAP_BLOCK_BYTES = 64 * 1024;
const HEADER_BYTES = 16;
const MAGIC = Buffer.from('TMDB', 'latin1');

export class DirtyBitmap {
  private dirty = 0;

  private constructor(private readonly fd: number, readonly blockCount: number, private readonly bits: Buffer) {
    for (const byte of bits) this.dirty += popcount(byte);
  }

  /** Opens the bitmap of a disk of `diskBytes`; another size starts clean. */
  static open(path: string, diskBytes: number): DirtyBitmap {
    const blockCount = Math.ceil(diskBytes / BITMAP_BLOCK_BYTES);
    const bits = Buffer.alloc(Math.ceil(blockCount / 8));
    const fd = openSync(path, 'a+');
    closeSync(fd);
    const rw = openSync(path, 'r+');
    const size = fstatSync(rw).size;
    const header = Buffer.alloc(HEADER_BYTES);
    let ok = false;
    if (size === HEADER_BYTES + bits.length) {
      readSync(rw, header, 0, HEADER_BYTES, 0);
      ok = header.subarray(0, 4).equals(MAGIC) && Number(header.readBigUInt64BE(8)) === diskBytes;
      if (ok) readSync(rw, bits, 0, bits.length, HEADER_BYTES);
    }
    if (!ok) {
      MAGIC.copy(header, 0);
      header.writeUInt16BE(1, 4);
      header.writeBigUInt64BE(BigInt(diskBytes), 8);
      ftruncateSync(rw, 0);
      writevAllSync(rw, [header, bits], 0);
      fdatasyncSync(rw);
    }
    return new DirtyBitmap(rw, blockCount, bits);
  }

  get dirtyCount(): number {
    return this.dirty;
  }

  isDirty(block: number): boolean {
    return (this.bits[block >> 3] & (1 << (block & 7))) !== 0;
  }

  /** Marks the blocks a byte range touches; durable before returning. */
  markRange(offset: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(offset / BITMAP_BLOCK_BYTES);
    const last = Math.floor((offset + length - 1) / BITMAP_BLOCK_BYTES);
    let changedLo = Infinity;
    let changedHi = -1;
    for (let b = first; b <= last; b++) {
      if (this.isDirty(b)) continue;
      this.bits[b >> 3] |= 1 << (b & 7);
      this.dirty++;
      changedLo = Math.min(changedLo, b >> 3);
      changedHi = Math.max(changedHi, b >> 3);
    }
    if (changedHi >= 0) this.persist(changedLo, changedHi);
  }

  /** Marks every block (the whole disk must be compared again). */
  markAll(): void {
    this.bits.fill(0xff);
    const spare = this.bits.length * 8 - this.blockCount;
    if (spare > 0) this.bits[this.bits.length - 1] &= 0xff >> spare;
    this.dirty = this.blockCount;
    this.persist(0, this.bits.length - 1);
  }

  /** Clears the given blocks, durably. */
  clear(blocks: readonly number[]): void {
    if (blocks.length === 0) return;
    let lo = Infinity;
    let hi = -1;
    for (const b of blocks) {
      if (!this.isDirty(b)) continue;
      this.bits[b >> 3] &= ~(1 << (b & 7));
      this.dirty--;
      lo = Math.min(lo, b >> 3);
      hi = Math.max(hi, b >> 3);
    }
    if (hi >= 0) this.persist(lo, hi);
  }

  /** Up to `limit` dirty blocks, lowest first. */
  take(limit: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.bits.length && out.length < limit; i++) {
      const byte = this.bits[i];
      if (byte === 0) continue;
      for (let bit = 0; bit < 8 && out.length < limit; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
    }
    return out;
  }

  /** Up to `limit` dirty blocks in `first`..`end - 1`, lowest first. */
  takeIn(first: number, end: number, limit: number): number[] {
    const out: number[] = [];
    const stop = Math.min(end, this.blockCount);
    for (let b = Math.max(0, first); b < stop && out.length < limit; b++) {
      const byte = this.bits[b >> 3];
      if (byte === 0) {
        b |= 7;
        continue;
      }
      if (byte & (1 << (b & 7))) out.push(b);
    }
    return out;
  }

  /** The first dirty block at or after `from`, or -1. */
  nextDirty(from: number): number {
    for (let b = Math.max(0, from); b < this.blockCount; b++) {
      if (this.bits[b >> 3] === 0) {
        b |= 7;
        continue;
      }
      if (this.isDirty(b)) return b;
    }
    return -1;
  }

  private persist(loByte: number, hiByte: number): void {
    writevAllSync(this.fd, [this.bits.subarray(loByte, hiByte + 1)], HEADER_BYTES + loByte);
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function popcount(b: number): number {
  let n = 0;
  for (; b; b &= b - 1) n++;
  return n;
}
