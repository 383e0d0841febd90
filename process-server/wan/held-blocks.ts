/**
 * The content hashes of blocks a master target acknowledged from this process server: what
 * it may send as references instead of data. In memory and bounded (oldest use forgotten
 * first); a master target that no longer holds a block says so and gets the data again, so
 * forgetting or a restart costs bandwidth, never correctness.
 */
import { LruMap } from '../../core/lru-map.ts';

/** Hashes remembered by default: 512 Ki blocks, 32 GiB of distinct 64 KiB blocks, about 60 MB. */
export const DEFAULT_HELD_BLOCKS = 512 * 1024;

export class HeldBlocks {
  private readonly hashes: LruMap<string, true>;

  constructor(readonly maxEntries = DEFAULT_HELD_BLOCKS) {
    this.hashes = new LruMap({ maxEntries });
  }

  /** True if the master target is believed to hold the block; counts as a use. */
  has(name: string): boolean {
    return this.hashes.get(name) !== undefined;
  }

  /** The master target acknowledged the block: the newest use. */
  add(name: string): void {
    this.hashes.set(name, true);
  }

  forget(name: string): void {
    this.hashes.delete(name);
  }

  get size(): number {
    return this.hashes.size;
  }
}
