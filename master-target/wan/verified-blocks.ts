/**
 * Copies of blocks this master target hashed itself and found to match their SHA-256: what a
 * reference to a block that recurs (the same OS or application block on many machines) can
 * resolve to without reading the replica and hashing it again. The bytes are private copies,
 * never written after they are stored, and a content hash names exactly one content, so an
 * entry never goes stale however the replicas change. In memory and bounded by bytes (oldest
 * use forgotten first); a forgotten block is simply looked up through the content index again.
 */

/** Bytes kept by default: 1024 blocks of 64 KiB. */
export const DEFAULT_VERIFIED_BLOCK_BYTES = 64 * 1024 * 1024;

export class VerifiedBlocks {
  private readonly byName = new Map<string, Buffer>();
  private bytes = 0;

  constructor(readonly maxBytes = DEFAULT_VERIFIED_BLOCK_BYTES) {}

  /** The block named `name`, if kept; counts as a use. Callers only read it. */
  get(name: string): Buffer | undefined {
    const b = this.byName.get(name);
    if (b) {
      this.byName.delete(name);
      this.byName.set(name, b);
    }
    return b;
  }

  /** Keeps a copy of `bytes`, which the caller has just checked to hash to `name`. */
  add(name: string, bytes: Uint8Array): void {
    if (bytes.length > this.maxBytes || this.byName.has(name)) return;
    const copy = Buffer.allocUnsafeSlow(bytes.length);
    copy.set(bytes);
    this.byName.set(name, copy);
    this.bytes += copy.length;
    while (this.bytes > this.maxBytes) {
      const [oldest, b] = this.byName.entries().next().value!;
      this.byName.delete(oldest);
      this.bytes -= b.length;
    }
  }

  get size(): number {
    return this.byName.size;
  }
}
