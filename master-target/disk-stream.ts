/**
 * One disk stream at the master target: its replica, journal and points, and the apply path.
 * Applies are serialised per stream; different streams proceed in parallel.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { TidemarkError } from '../core/errors.ts';
import { FrameFlag, recordTag, RecordType } from '../core/wire/frame.ts';
import { writeData, type PreparedBatch } from './batch.ts';
import { isNoSpace } from './no-space.ts';
import { encodeBegin, encodeTag, type StoredPoint } from './journal-segment.ts';
import { Journal, type JournalPin } from './journal.ts';
import { Mutex } from '../core/mutex.ts';
import type { Logger } from '../core/log.ts';
import { PointIndex } from './points.ts';
import { ImageFile } from './replica.ts';
import { collectUndo, type UndoPlan } from './undo.ts';

/** Segment size and age limits (docs/journal-format.md), and a hook run after each rollover. */
export interface SegmentLimits {
  segmentBytes: number;
  segmentMaxAgeMs: number;
  /** Called (outside the apply lock) after a batch started a new segment. */
  onRollover?: (stream: DiskStream) => void;
}

export type ApplyResult =
  | { status: 'applied'; nextSeq: number }
  | { status: 'duplicate'; nextSeq: number }
  | { status: 'gap'; nextSeq: number };

/** The data directory is full: nothing of the batch was stored. */
export class NoSpaceError extends TidemarkError {}

/** A previous failure left the stream unable to accept batches until recovery succeeds. */
export class StreamUnavailableError extends TidemarkError {}

/** What an export needs: a copy of the replica and the journal as it stood at that moment. */
export interface Snapshot {
  /** Last seq applied to the copy. */
  appliedSeq: number;
  diskBytes: number;
  pin: JournalPin;
}

export class DiskStream {
  private readonly lock = new Mutex();
  private broken?: Error;

  private constructor(
    readonly machine: string,
    readonly disk: string,
    readonly dir: string,
    private readonly replica: ImageFile,
    private readonly journal: Journal,
    readonly points: PointIndex,
    private readonly limits: SegmentLimits,
    private readonly log: Logger,
  ) {}

  /** Opens (or creates) the stream in `dir`, recovering from any interrupted batch. */
  static async open(dir: string, machine: string, disk: string, limits: SegmentLimits, log: Logger): Promise<DiskStream> {
    await mkdir(dir, { recursive: true });
    const replica = await ImageFile.open(join(dir, 'replica.img'));
    const points = new PointIndex();
    const journal = await Journal.open(join(dir, 'journal'), replica, log, (b, tags) =>
      points.addBatch(b.firstSeq, b.lastSeq, b.timeMs, (b.frameFlags & FrameFlag.ORDERED) !== 0, tags),
    );
    const oldest = journal.segments[0];
    if (oldest?.basePoint) points.addBase(oldest.firstSeq - 1, oldest.basePoint);
    if (replica.sizeBytes !== journal.diskBytes) {
      log.warn('replica size differs from the journal, resizing', { machine, disk, replicaBytes: replica.sizeBytes, diskBytes: journal.diskBytes });
      await replica.resize(journal.diskBytes);
      await replica.sync();
    }
    return new DiskStream(machine, disk, dir, replica, journal, points, limits, log);
  }

  get nextSeq(): number {
    return this.journal.nextSeq;
  }

  get diskBytes(): number {
    return this.journal.diskBytes;
  }

  /** Oldest seq a point may have: the one before the oldest retained undo record. */
  get oldestSeq(): number {
    return this.journal.firstSeq - 1;
  }

  /** Applies one checked batch durably (see docs/journal-format.md, "Applying a batch"). */
  apply(batch: PreparedBatch, nowMs = Date.now()): Promise<ApplyResult> {
    return this.lock.run(async () => {
      if (this.broken) await this.recover();
      const h = batch.header;
      const nextSeq = this.journal.nextSeq;
      if (h.lastSeq < nextSeq) return { status: 'duplicate', nextSeq };
      if (h.firstSeq !== nextSeq) return { status: 'gap', nextSeq };
      try {
        if (await this.write(batch, nowMs)) queueMicrotask(() => this.limits.onRollover?.(this));
      } catch (err) {
        if (isNoSpace(err)) {
          throw new NoSpaceError('no space left in the master target data directory; the batch was not stored', {
            cause: err,
            hint: 'free space or shorten the retention window; the process server will retry',
          });
        }
        throw err;
      }
      return { status: 'applied', nextSeq: this.journal.nextSeq };
    });
  }

  /** Writes and commits one batch; returns true when it started a new segment. */
  private async write(batch: PreparedBatch, nowMs: number): Promise<boolean> {
    const h = batch.header;
    const j = this.journal;
    const rolled = j.needsRollover(nowMs, this.limits.segmentBytes, this.limits.segmentMaxAgeMs);
    if (rolled) await j.rollover(nowMs, this.pointAt(j.nextSeq - 1));
    const prevDiskBytes = j.diskBytes;
    const diskBytes = Math.max(prevDiskBytes, h.diskBytes);
    const w = j.entryWriter();
    const tags: Array<{ seq: number; point: StoredPoint }> = [];
    let plan: UndoPlan;
    try {
      await w.push(encodeBegin({ firstSeq: h.firstSeq, lastSeq: h.lastSeq, timeMs: h.timeMs, appliedMs: nowMs, prevDiskBytes, diskBytes, frameFlags: h.flags }));
      for (const r of batch.records) {
        if (r.type !== RecordType.TAG) continue;
        await w.push(encodeTag(r.seq, r.stored.payload));
        tags.push({ seq: r.seq, point: recordTag(r.stored) });
      }
      plan = await collectUndo(batch, this.replica, (parts) => w.push(parts));
      await w.flush();
      await j.syncActive();
    } catch (err) {
      await this.undoTail(err);
      throw err;
    }
    try {
      if (diskBytes > this.replica.sizeBytes) await this.replica.resize(diskBytes);
      for (let i = 0; i < batch.records.length; i++) {
        const r = batch.records[i];
        if (r.type === RecordType.WRITE) await this.replica.write(r.offset, writeData(r));
        else if (r.type === RecordType.ZERO || r.type === RecordType.TRIM) {
          for (const [offset, length] of plan.zeroPieces.get(i) ?? []) await this.replica.zero(offset, length);
        }
      }
      await this.replica.sync();
      await j.commit(w, h.lastSeq, h.timeMs, diskBytes, nowMs);
    } catch (err) {
      await this.undoTail(err);
      throw err;
    }
    this.points.addBatch(h.firstSeq, h.lastSeq, h.timeMs, (h.flags & FrameFlag.ORDERED) !== 0, tags);
    return rolled;
  }

  /** Rolls back a failed batch; if even that fails, refuses batches until it succeeds. */
  private async undoTail(cause: unknown): Promise<void> {
    try {
      await this.journal.rollbackTail(this.replica);
    } catch (err) {
      this.broken = err as Error;
      this.log.error('rollback of a failed batch failed; the stream refuses batches until it succeeds', {
        machine: this.machine,
        disk: this.disk,
        cause: (cause as Error).message,
        error: err,
      });
    }
  }

  private async recover(): Promise<void> {
    try {
      await this.journal.rollbackTail(this.replica);
      this.broken = undefined;
    } catch (err) {
      throw new StreamUnavailableError(`stream ${this.machine}/${this.disk} cannot roll back its last failed batch: ${(err as Error).message}`, {
        cause: err,
        hint: 'free space in the data directory; the master target retries on the next batch or at restart',
      });
    }
  }

  /** The point at `seq` as stored in a segment header, if `seq` is a point. */
  private pointAt(seq: number): StoredPoint | undefined {
    const p = this.points.pointAt(seq);
    if (!p) return undefined;
    return { kind: p.kind, timeMs: Date.parse(p.time), ...(p.name !== undefined ? { name: p.name } : {}) };
  }

  /**
   * Copies the replica to `copyPath` and pins the journal after `seq`, holding the apply lock
   * only for the copy. The caller must release the pin.
   */
  snapshot(seq: number, copyPath: string): Promise<Snapshot> {
    return this.lock.run(async () => {
      if (seq > this.journal.nextSeq - 1 || seq < this.oldestSeq) {
        throw new RangeError(`seq ${seq} is outside ${this.oldestSeq}..${this.journal.nextSeq - 1}`);
      }
      const pin = this.journal.pin(seq);
      try {
        await copyFile(this.replica.path, copyPath, constants.COPYFILE_FICLONE);
      } catch (err) {
        pin.release();
        throw err;
      }
      return { appliedSeq: this.journal.nextSeq - 1, diskBytes: this.journal.diskBytes, pin };
    });
  }

  /** Deletes segments older than the window; returns how many. */
  retain(cutoffMs: number): Promise<number> {
    return this.lock.run(async () => {
      const dropped = await this.journal.dropOlderThan(cutoffMs);
      if (dropped) {
        const oldest = this.journal.segments[0];
        this.points.dropBefore(oldest.firstSeq - 1);
        if (oldest.basePoint) this.points.addBase(oldest.firstSeq - 1, oldest.basePoint);
        this.log.info('journal segments deleted by retention', { machine: this.machine, disk: this.disk, segments: dropped, oldestSeq: oldest.firstSeq - 1 });
      }
      return dropped;
    });
  }

  close(): Promise<void> {
    return this.lock.run(async () => {
      await this.journal.close();
      await this.replica.close();
    });
  }
}
