/**
 * Copies of spooled frames kept in memory as they arrived, until the master target has
 * them, so that shipping need not read them back from the spool and check their checksums a
 * second time: each copy was made from the frame whose checksum was verified as it arrived,
 * and is never written afterwards. Bounded for all streams together; a frame not kept (no
 * room, or a restart since) is read back from the spool and checked as before. (Not the tap
 * agent's held writes, whose data is read back from the disk: edge-agent/tap/held-writes.ts.)
 */
import type { BufferPool } from '../core/buffer-pool.ts';

/** Memory for kept frames, all streams together. */
export const DEFAULT_ARRIVED_FRAME_BYTES = 128 * 1024 * 1024;

export class ArrivedFrameBudget {
  usedBytes = 0;
  constructor(readonly maxBytes = DEFAULT_ARRIVED_FRAME_BYTES) {}
}

interface Kept {
  lastSeq: number;
  frame: Buffer;
  /** Bytes of the buffer behind `frame`, as counted in the budget. */
  bytes: number;
}

/** One stream's kept frames, oldest first, keyed by first seq. */
export class ArrivedFrames {
  private readonly byFirstSeq = new Map<number, Kept>();

  constructor(private readonly pool: BufferPool, private readonly budget: ArrivedFrameBudget) {}

  /** Keeps a copy of a verified frame if the budget has room for it. */
  keep(firstSeq: number, lastSeq: number, frame: Buffer): void {
    const copy = this.pool.acquire(frame.length);
    const bytes = copy.buffer.byteLength;
    if (this.budget.usedBytes + bytes > this.budget.maxBytes) {
      this.pool.release(copy);
      return;
    }
    frame.copy(copy);
    this.budget.usedBytes += bytes;
    this.byFirstSeq.set(firstSeq, { lastSeq, frame: copy, bytes });
  }

  /** The kept frames starting at these first seqs, or undefined unless every one is kept. */
  get(firstSeqs: readonly number[]): Buffer[] | undefined {
    const out: Buffer[] = [];
    for (const s of firstSeqs) {
      const h = this.byFirstSeq.get(s);
      if (!h) return undefined;
      out.push(h.frame);
    }
    return out;
  }

  /** Gives back every kept frame whose last seq is at or below `seq`. */
  dropThrough(seq: number): void {
    for (const [firstSeq, h] of this.byFirstSeq) {
      if (h.lastSeq > seq) break;
      this.forget(firstSeq, h);
    }
  }

  clear(): void {
    for (const [firstSeq, h] of this.byFirstSeq) this.forget(firstSeq, h);
  }

  private forget(firstSeq: number, h: Kept): void {
    this.byFirstSeq.delete(firstSeq);
    this.budget.usedBytes -= h.bytes;
    this.pool.release(h.frame);
  }
}
