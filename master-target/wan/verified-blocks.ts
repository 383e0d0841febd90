/**
 * Copies of blocks this master target hashed itself and found to match their SHA-256: what a
 * reference to a block that recurs (the same OS or application block on many machines) can
 * resolve to without reading the replica and hashing it again. The bytes are private copies,
 * never written after they are stored, and a content hash names exactly one content, so an
 * entry never goes stale however the replicas change. In memory and bounded by bytes (oldest
 * use forgotten first); a forgotten block is simply looked up through the content index again.
 */
import { LruMap } from '../../core/lru-map.ts';

/** Bytes kept by default: 1024 blocks of 64 KiB. */
export const DEFAULT_VERIFIED_BLOCK_BYTES = 64 * 1024 * 1024;

export class VerifiedBlocks {
  private readonly byName: LruMap<string, Buffer>;

  constructor(readonly maxBytes = DEFAULT_VERIFIED_BLOCK_BYTES) {
    this.byName = new LruMap({ maxBytes, bytesOf: (b) => b.length });
  }

  /** The block named `name`, if kept; counts as a use. Callers only read it. */
  get(name: string): Buffer | undefined {
    return this.byName.get(name);
  }

  /**
   * Keeps a copy of `bytes`, which the caller has just checked to hash to `name`. A name
   * already kept has these very bytes, so it is left as it is (not counted as a use), and a
   * block that could never fit is not copied at all.
   */
  add(name: string, bytes: Uint8Array): void {
    if (bytes.length > this.maxBytes || this.byName.has(name)) return;
    const copy = Buffer.allocUnsafeSlow(bytes.length);
    copy.set(bytes);
    this.byName.set(name, copy);
  }

  get size(): number {
    return this.byName.size;
  }
}
