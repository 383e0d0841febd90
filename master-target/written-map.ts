/**
 * Which 64 KiB blocks of the replica may hold non-zero bytes. A clear bit means the block is
 * all zero (never written since the replica was created), so the undo of a write there is
 * ZERO and costs no read. The map is conservative: bits are set before the replica is written
 * and never cleared, and it is rebuilt at startup from the newest segment's header plus that
 * segment's UNDO items (docs/journal-format.md, "Written map").
 */
import { compressIfSmaller, decompress } from '../core/lz4.ts';

export const WRITTEN_BLOCK_BYTES = 64 * 1024;

/** How a map is stored in a segment header. */
export enum WrittenEncoding {
  BITMAP = 0,
  LZ4 = 1,
}

export class WrittenMap {
  private bits: Uint8Array;

  constructor(bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(0);
  }

  /** Marks every block that `[offset, offset + length)` touches. */
  mark(offset: number, length: number): void {
    if (length <= 0) return;
    const first = Math.floor(offset / WRITTEN_BLOCK_BYTES);
    const last = Math.floor((offset + length - 1) / WRITTEN_BLOCK_BYTES);
    this.ensure(last);
    for (let b = first; b <= last; b++) this.bits[b >>> 3] |= 1 << (b & 7);
  }

  isWritten(block: number): boolean {
    const byte = block >>> 3;
    return byte < this.bits.length && (this.bits[byte] & (1 << (block & 7))) !== 0;
  }

  /**
   * The parts of `[offset, offset + length)` lying in written blocks, as merged
   * `[start, end)` ranges in ascending order (clipped to the range).
   */
  writtenRanges(offset: number, length: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (length <= 0) return out;
    const end = offset + length;
    const first = Math.floor(offset / WRITTEN_BLOCK_BYTES);
    const last = Math.floor((end - 1) / WRITTEN_BLOCK_BYTES);
    for (let b = first; b <= last; b++) {
      if (!this.isWritten(b)) continue;
      const s = Math.max(offset, b * WRITTEN_BLOCK_BYTES);
      const t = Math.min(end, (b + 1) * WRITTEN_BLOCK_BYTES);
      const prev = out.at(-1);
      if (prev && prev[1] === s) prev[1] = t;
      else out.push([s, t]);
    }
    return out;
  }

  private ensure(block: number): void {
    const need = (block >>> 3) + 1;
    if (need <= this.bits.length) return;
    const grown = new Uint8Array(Math.max(need, Math.min(this.bits.length * 2, need + (1 << 20))));
    grown.set(this.bits);
    this.bits = grown;
  }

  /** The map for a disk of `diskBytes`, as stored in a segment header. */
  encode(diskBytes: number): { encoding: WrittenEncoding; bytes: Buffer } {
    const blocks = Math.ceil(diskBytes / WRITTEN_BLOCK_BYTES);
    const raw = Buffer.alloc((blocks + 7) >>> 3);
    raw.set(this.bits.subarray(0, raw.length));
    if (blocks & 7 && raw.length) raw[raw.length - 1] &= (1 << (blocks & 7)) - 1;
    const packed = raw.length >= 64 ? compressIfSmaller(raw) : undefined;
    return packed ? { encoding: WrittenEncoding.LZ4, bytes: packed } : { encoding: WrittenEncoding.BITMAP, bytes: raw };
  }

  /** Reads a map stored by `encode` for a disk of `diskBytes`. */
  static decode(encoding: WrittenEncoding, bytes: Buffer, diskBytes: number): WrittenMap {
    const rawBytes = (Math.ceil(diskBytes / WRITTEN_BLOCK_BYTES) + 7) >>> 3;
    if (encoding === WrittenEncoding.BITMAP) {
      if (bytes.length !== rawBytes) throw new RangeError(`written map holds ${bytes.length} bytes, a disk of ${diskBytes} bytes needs ${rawBytes}`);
      return new WrittenMap(Uint8Array.from(bytes));
    }
    if (encoding === WrittenEncoding.LZ4) return new WrittenMap(Uint8Array.from(decompress(bytes, rawBytes)));
    throw new RangeError(`unknown written map encoding ${encoding as number}`);
  }

  /** Number of written blocks (tests, logs). */
  count(): number {
    let n = 0;
    for (const byte of this.bits) for (let v = byte; v; v &= v - 1) n++;
    return n;
  }
}
