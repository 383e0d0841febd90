/**
 * Where the master target last wrote each block it was sent with a content hash: hash →
 * (stream, offset). The replica changes under it, so an entry is a hint, checked by hashing
 * the bytes when a reference uses it. In memory and bounded (oldest use forgotten first); a
 * forgotten block is asked for again, never guessed.
 */
import { LruMap } from '../../core/lru-map.ts';

/** Entries kept by default: 1 Mi blocks (64 GiB of distinct 64 KiB blocks), about 150 MB. */
export const DEFAULT_INDEXED_BLOCKS = 1024 * 1024;

export interface BlockLocation {
  machine: string;
  disk: string;
  offset: number;
  lengthBytes: number;
}

export class ContentIndex {
  private readonly byHash: LruMap<string, BlockLocation>;

  constructor(readonly maxEntries = DEFAULT_INDEXED_BLOCKS) {
    this.byHash = new LruMap({ maxEntries });
  }

  /** Where the block was last written, if known; counts as a use. */
  lookup(name: string): BlockLocation | undefined {
    return this.byHash.get(name);
  }

  /** The block was just written at `at`: the newest place, and the newest use. */
  note(name: string, at: BlockLocation): void {
    this.byHash.set(name, at);
  }

  forget(name: string): void {
    this.byHash.delete(name);
  }

  get size(): number {
    return this.byHash.size;
  }
}
