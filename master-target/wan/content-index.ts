/**
 * Where the master target last wrote each block it was sent with a content hash: hash →
 * (stream, offset). The replica changes under it, so an entry is a hint, checked by hashing
 * the bytes when a reference uses it. In memory and bounded (oldest use forgotten first); a
 * forgotten block is asked for again, never guessed.
 */

/** Entries kept by default: 1 Mi blocks (64 GiB of distinct 64 KiB blocks), about 150 MB. */
export const DEFAULT_INDEXED_BLOCKS = 1024 * 1024;

export interface BlockLocation {
  machine: string;
  disk: string;
  offset: number;
  lengthBytes: number;
}

export class ContentIndex {
  private readonly byHash = new Map<string, BlockLocation>();

  constructor(readonly maxEntries = DEFAULT_INDEXED_BLOCKS) {}

  lookup(name: string): BlockLocation | undefined {
    const at = this.byHash.get(name);
    if (at) {
      this.byHash.delete(name);
      this.byHash.set(name, at);
    }
    return at;
  }

  note(name: string, at: BlockLocation): void {
    this.byHash.delete(name);
    this.byHash.set(name, at);
    if (this.byHash.size > this.maxEntries) this.byHash.delete(this.byHash.keys().next().value!);
  }

  forget(name: string): void {
    this.byHash.delete(name);
  }

  get size(): number {
    return this.byHash.size;
  }
}
