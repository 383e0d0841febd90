/**
 * Space limits of a master target's data directory (docs/journal-format.md, "Space limits"):
 * free space kept on its file system, and optionally a cap on all journals together. When a
 * limit is crossed, the oldest journal segment of all streams is deleted, inside the retention
 * window: recovery then reaches less far back, but replication goes on and the RPO holds,
 * which is what a journal is for. Nothing an open reader needs goes, nor any stream's newest
 * segment; when that is not enough the batch is refused (507) and the process server keeps it.
 */
import { statfs } from 'node:fs/promises';
import type { Logger } from '../core/log.ts';
import { Mutex } from '../core/mutex.ts';
import { RecordType } from '../core/wire/frame.ts';
import type { PreparedBatch } from './batch.ts';
import { NoSpaceError, type ApplyResult, type DiskStream } from './disk-stream.ts';
import type { StreamStore } from './store.ts';

/**
 * Bytes a batch may need on disk at most: undo records of what it changes, and for writes the
 * new bytes in the replica as well (zero and trim ranges write zeros over what was there).
 */
function roomFor(batch: PreparedBatch): number {
  let bytes = 0;
  for (const r of batch.records) {
    if (r.type === RecordType.WRITE) bytes += 2 * r.lengthBytes;
    else if (r.type === RecordType.ZERO || r.type === RecordType.TRIM) bytes += r.lengthBytes;
  }
  return bytes;
}

/** Default free space kept on the data directory's file system. */
export const DEFAULT_KEEP_FREE_BYTES = 2 * 1024 ** 3;
/** A limit nothing can be deleted for is reported at most this often. */
const STUCK_WARN_EVERY_MS = 60_000;

export interface SpaceLimitsOptions {
  /** The data directory: its file system's free space is what `keepFreeBytes` keeps. */
  dataDir: string;
  /** Free bytes kept on that file system; 0 turns the check off (a full disk then refuses batches). */
  keepFreeBytes: number;
  /** Bytes all journals together may hold; undefined for no cap. */
  journalMaxBytes?: number;
  log: Logger;
}

export class SpaceLimits {
  private readonly passes = new Mutex();
  private lastStuckWarnMs = 0;
  /** Segments deleted for space since start. */
  droppedSegments = 0;
  /** Batches applied on a second try, after a full file system had space made. */
  retriedBatches = 0;

  constructor(
    private readonly store: StreamStore,
    readonly o: SpaceLimitsOptions,
  ) {}

  /** Free bytes on the data directory's file system (for an unprivileged writer). */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.o.dataDir);
    return s.bavail * s.bsize;
  }

  /** Bytes of every stream's journal. */
  journalBytes(): number {
    let bytes = 0;
    for (const s of this.store.list()) bytes += s.journalBytes;
    return bytes;
  }

  /**
   * Deletes oldest segments until both limits hold, with `extraFreeBytes` more free than kept
   * (room for a batch the file system just refused). Returns the bytes of journal deleted.
   * Passes run one at a time.
   */
  enforce(extraFreeBytes = 0): Promise<number> {
    return this.passes.run(() => this.pass(extraFreeBytes));
  }

  /** Whether there is a limit to keep at all (`--keep-free 0` and no cap: none). */
  private get active(): boolean {
    return this.o.keepFreeBytes > 0 || this.o.journalMaxBytes !== undefined;
  }

  /**
   * Applies a batch within the limits: first makes room if a limit is crossed; if the file
   * system is full all the same (another writer on it, or a batch larger than the margin),
   * makes room for this batch and tries once more.
   */
  async apply(stream: DiskStream, batch: PreparedBatch): Promise<ApplyResult> {
    if (!this.active) return stream.apply(batch);
    await this.enforce();
    try {
      return await stream.apply(batch);
    } catch (err) {
      if (!(err instanceof NoSpaceError) || this.o.keepFreeBytes === 0) throw err;
      if (!(await this.enforce(roomFor(batch)))) throw err;
      const r = await stream.apply(batch);
      this.retriedBatches++;
      return r;
    }
  }

  private async pass(extraFreeBytes: number): Promise<number> {
    const { keepFreeBytes, journalMaxBytes } = this.o;
    let journal = journalMaxBytes === undefined ? 0 : this.journalBytes();
    let free = keepFreeBytes > 0 ? await this.freeBytes() : Number.POSITIVE_INFINITY;
    const wantFree = keepFreeBytes + extraFreeBytes;
    let deleted = 0;
    for (;;) {
      const overCap = journalMaxBytes !== undefined && journal > journalMaxBytes;
      if (!overCap && free >= wantFree) return deleted;
      const reason = overCap
        ? `journals over --journal-max (${journal} > ${journalMaxBytes} bytes)`
        : `keeping --keep-free (${free} bytes free, ${wantFree} wanted)`;
      const victim = this.oldestDroppable();
      if (!victim) {
        this.warnStuck(reason);
        return deleted;
      }
      // Counted as freed by its committed length: a file still open elsewhere frees its blocks
      // only when closed, and statfs meanwhile would have every other segment deleted too.
      const bytes = await victim.dropOldestSegment(reason);
      if (!bytes) return deleted;
      this.droppedSegments++;
      deleted += bytes;
      journal -= bytes;
      free += bytes;
    }
  }

  /** The stream whose oldest deletable segment ends earliest. */
  private oldestDroppable(): DiskStream | undefined {
    let best: DiskStream | undefined;
    let bestMs = Number.POSITIVE_INFINITY;
    for (const s of this.store.list()) {
      const ms = s.oldestDroppableTimeMs;
      if (ms !== undefined && ms < bestMs) {
        best = s;
        bestMs = ms;
      }
    }
    return best;
  }

  private warnStuck(reason: string): void {
    const now = Date.now();
    if (now - this.lastStuckWarnMs < STUCK_WARN_EVERY_MS) return;
    this.lastStuckWarnMs = now;
    this.o.log.warn('space limit crossed and no journal segment can be deleted (each stream is down to its newest segment, or an open view needs the rest)', { reason });
  }
}
