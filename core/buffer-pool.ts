/**
 * Reusable buffers for large payloads: NBD replies and writes, batch frames. A fresh 1 MiB
 * buffer costs page faults and zeroed pages every time (a fifth of the NBD server's CPU time
 * on 1 MiB reads), and its external memory makes V8 run full collections every few dozen
 * megabytes allocated; a reused one costs nothing. Sizes are rounded up to powers of two.
 */

/** Requests smaller than this use ordinary allocations (cheap at that size). */
export const MIN_POOLED_BYTES = 64 * 1024;

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private readonly owned = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  /** @param maxFreeBytes most bytes kept for reuse; buffers released beyond it are dropped. */
  constructor(private readonly maxFreeBytes = 64 * 1024 * 1024) {}

  /** A buffer of exactly `length` bytes, contents undefined. */
  acquire(length: number): Buffer {
    if (length < MIN_POOLED_BYTES) return Buffer.allocUnsafe(length);
    const size = 2 ** Math.ceil(Math.log2(length));
    const memory = this.free.get(size)?.pop();
    if (memory) {
      this.freeBytes -= size;
      return Buffer.from(memory, 0, length);
    }
    const fresh = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
    this.owned.add(fresh);
    return Buffer.from(fresh, 0, length);
  }

  /**
   * Gives back a buffer from `acquire` once nothing uses it any more. Buffers the pool did not
   * hand out are ignored, so any buffer may be passed.
   */
  release(buffer: Buffer): void {
    const memory = buffer.buffer as ArrayBuffer;
    if (!this.owned.has(memory) || this.freeBytes + memory.byteLength > this.maxFreeBytes) return;
    const list = this.free.get(memory.byteLength) ?? [];
    if (list.includes(memory)) return;
    list.push(memory);
    this.free.set(memory.byteLength, list);
    this.freeBytes += memory.byteLength;
  }
}
