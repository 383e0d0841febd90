/**
 * The tap's held writes not yet acknowledged by the process server: large writes whose change
 * log record names only their range, their data being read from the backing disk when they
 * are shipped (docs/agent-state.md, "Held writes"). Before anything changes bytes a held write
 * still depends on, its data is copied aside (HeldCopies) and it no longer depends on the disk.
 *
 * Lookups by range go through 1 MiB chunks of the disk, so that the check every change makes
 * costs a map lookup or two when the disk holds few or no held writes in that place.
 */

const CHUNK_BYTES = 1024 * 1024;

export interface HeldWrite {
  seq: number;
  offset: number;
  lengthBytes: number;
  /** The data was copied aside (its copy is in HeldCopies); the disk no longer matters to it. */
  copied: boolean;
}

export class HeldWrites {
  private readonly bySeq = new Map<number, HeldWrite>();
  /** Chunk index → held writes still on the disk that touch the chunk. */
  private readonly onDisk = new Map<number, HeldWrite[]>();
  private dataBytes = 0;

  get size(): number {
    return this.bySeq.size;
  }

  /** Bytes of data the held writes stand for. */
  get bytes(): number {
    return this.dataBytes;
  }

  get(seq: number): HeldWrite | undefined {
    return this.bySeq.get(seq);
  }

  /** Adds a write held by the disk; seqs must increase. */
  add(seq: number, offset: number, lengthBytes: number, copied = false): HeldWrite {
    const w: HeldWrite = { seq, offset, lengthBytes, copied };
    this.bySeq.set(seq, w);
    this.dataBytes += lengthBytes;
    if (!copied) this.forChunks(w, (list) => list.push(w));
    return w;
  }

  /** Held writes still on the disk whose range overlaps `offset`..`offset + lengthBytes`, oldest first. */
  onDiskOverlapping(offset: number, lengthBytes: number): HeldWrite[] {
    if (this.onDisk.size === 0) return [];
    const end = offset + lengthBytes;
    const found = new Set<HeldWrite>();
    for (let c = Math.floor(offset / CHUNK_BYTES); c * CHUNK_BYTES < end; c++) {
      const list = this.onDisk.get(c);
      if (!list) continue;
      for (const w of list) if (w.offset < end && offset < w.offset + w.lengthBytes) found.add(w);
    }
    return [...found].sort((a, b) => a.seq - b.seq);
  }

  /** The write's data now lives in its copy. */
  markCopied(w: HeldWrite): void {
    if (w.copied) return;
    w.copied = true;
    this.unindex(w);
  }

  /** Forgets held writes below `seq` (acknowledged). */
  dropBelow(seq: number): void {
    for (const [s, w] of this.bySeq) {
      if (s >= seq) break;
      this.forget(w);
    }
  }

  /** Forgets held writes at or above `seq` (their records never reached the log). */
  dropFrom(seq: number): void {
    for (const w of [...this.bySeq.values()]) if (w.seq >= seq) this.forget(w);
  }

  clear(): void {
    this.bySeq.clear();
    this.onDisk.clear();
    this.dataBytes = 0;
  }

  private forget(w: HeldWrite): void {
    this.bySeq.delete(w.seq);
    this.dataBytes -= w.lengthBytes;
    if (!w.copied) this.unindex(w);
  }

  private unindex(w: HeldWrite): void {
    this.forChunks(w, (list, c) => {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.onDisk.delete(c);
    });
  }

  private forChunks(w: HeldWrite, f: (list: HeldWrite[], chunk: number) => void): void {
    const end = w.offset + w.lengthBytes;
    for (let c = Math.floor(w.offset / CHUNK_BYTES); c * CHUNK_BYTES < end; c++) {
      let list = this.onDisk.get(c);
      if (!list) this.onDisk.set(c, (list = []));
      f(list, c);
      if (list.length === 0) this.onDisk.delete(c);
    }
  }
}
