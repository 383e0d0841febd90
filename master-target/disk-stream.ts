/**
 * One disk stream at the master target: its replica, journal, points and undo index, the apply
 * path, and point-in-time readers. Applies are serialised per stream; different streams
 * proceed in parallel; readers run beside applies without taking the lock.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../core/errors.ts';
import { FrameFlag, recordTag, RecordType } from '../core/wire/frame.ts';
import { writeData, type PreparedBatch } from './batch.ts';
import { isNoSpace } from './no-space.ts';
import { encodeBegin, encodeResult, encodeTag, encodeUndo, type StoredPoint } from './journal-segment.ts';
import { resultOf } from './journal-result.ts';
import { Journal } from './journal.ts';
import { compactSegment } from './journal-compact.ts';
import { isKept, type TierPolicy } from './retention-tiers.ts';
import { Mutex } from '../core/mutex.ts';
import type { Logger } from '../core/log.ts';
import { PointInTimeReader, type PointSource } from './point-reader.ts';
import { PointIndex } from './points.ts';
import { ImageFile, ZEROS } from './replica.ts';
import { UndoIndex, type IndexedUndo } from './undo-index.ts';
import { collectUndo, type UndoPlan } from './undo.ts';
import type { WrittenMap } from './written-map.ts';

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

/** A seq outside the points a stream can still show. */
export class PointOutOfRangeError extends TidemarkError {}

/** Disk size changes: from `seq` on (until the next change), the disk holds `diskBytes`. */
interface SizeChange {
  seq: number;
  diskBytes: number;
}

/** Writes issued at once to the replica when a batch's records do not overlap. */
const WRITES_IN_FLIGHT = 4;

export class DiskStream implements PointSource {
  private readonly lock = new Mutex();
  private broken?: Error;
  private epoch = 0;
  private readonly readers = new Set<PointInTimeReader>();
  private compacting?: Promise<{ segments: number; savedBytes: number }>;
  /** When space limits last shortened this stream's window (ms since the epoch), since start. */
  shortenedForSpaceMs?: number;

  private constructor(
    readonly machine: string,
    readonly disk: string,
    readonly dir: string,
    readonly replica: ImageFile,
    private readonly journal: Journal,
    readonly points: PointIndex,
    /** Replaced whole when a segment is compacted; readers take it afresh for every read. */
    public index: UndoIndex,
    private readonly sizes: SizeChange[],
    private readonly limits: SegmentLimits,
    private readonly log: Logger,
  ) {}

  /** Opens (or creates) the stream in `dir`, recovering from any interrupted batch. */
  static async open(dir: string, machine: string, disk: string, limits: SegmentLimits, log: Logger): Promise<DiskStream> {
    await mkdir(dir, { recursive: true });
    const replica = await ImageFile.open(join(dir, 'replica.img'));
    const points = new PointIndex();
    const index = new UndoIndex();
    const sizes: SizeChange[] = [];
    const journal = await Journal.open(join(dir, 'journal'), replica, log, (segment, b, tags, undo) => {
      points.addBatch(b.firstSeq, b.lastSeq, b.timeMs, (b.frameFlags & FrameFlag.ORDERED) !== 0, tags);
      for (const u of undo) index.add({ ...u, segment });
      if (b.diskBytes !== b.prevDiskBytes) sizes.push({ seq: b.firstSeq, diskBytes: b.diskBytes });
    });
    const oldest = journal.segments[0];
    if (oldest?.basePoint) points.addBase(oldest.firstSeq - 1, oldest.basePoint);
    if (replica.sizeBytes !== journal.diskBytes) {
      log.warn('replica size differs from the journal, resizing', { machine, disk, replicaBytes: replica.sizeBytes, diskBytes: journal.diskBytes });
      await replica.resize(journal.diskBytes);
      await replica.sync();
    }
    return new DiskStream(machine, disk, dir, replica, journal, points, index, sizes, limits, log);
  }

  get nextSeq(): number {
    return this.journal.nextSeq;
  }

  get diskBytes(): number {
    return this.journal.diskBytes;
  }

  /** Replica blocks that may hold data (see WrittenMap). */
  get written(): WrittenMap {
    return this.journal.written;
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
    const segment = j.newest!.firstSeq;
    const w = j.entryWriter();
    const tags: Array<{ seq: number; point: StoredPoint }> = [];
    let plan: UndoPlan;
    let indexed = false;
    let lazy = false;
    try {
      w.push(encodeBegin({ firstSeq: h.firstSeq, lastSeq: h.lastSeq, timeMs: h.timeMs, appliedMs: nowMs, prevDiskBytes, diskBytes, frameFlags: h.flags }));
      for (const r of batch.records) {
        if (r.type !== RecordType.TAG) continue;
        w.push(encodeTag(r.seq, r.stored.payload));
        tags.push({ seq: r.seq, point: recordTag(r.stored) });
      }
      plan = await collectUndo(batch, this.replica, j.written);
      const located: IndexedUndo[] = [];
      for (const u of plan.items) {
        const parts = encodeUndo(u.seq, u.offset, u.lengthBytes, u.encoding, u.payload);
        const at = w.push(parts);
        located.push({ seq: u.seq, offset: u.offset, lengthBytes: u.lengthBytes, encoding: u.encoding, segment, at, itemBytes: w.endBytes - at });
      }
      // Without overlaps, what the batch leaves is its records' data: recovery can check it, so
      // the entry needs no COMMIT of its own before the batch is acknowledged.
      lazy = !plan.overlapping;
      if (lazy) w.push(encodeResult(resultOf(batch)));
      await w.flush();
      await j.syncEntry(w);
      // The undo items are durable: readers may use them from now on, and must, since the
      // replica changes next. The written map learns the blocks before they are written.
      for (const u of located) this.index.add(u);
      indexed = true;
      for (const r of batch.records) if (r.type === RecordType.WRITE) j.written.mark(r.offset, r.lengthBytes);
    } catch (err) {
      await this.undoTail(err, indexed ? h.firstSeq : undefined);
      throw err;
    }
    try {
      if (diskBytes > this.replica.sizeBytes) await this.replica.resize(diskBytes);
      await this.writeRecords(batch, plan);
      await this.replica.datasync();
      if (lazy) j.acknowledge(w, h.lastSeq, h.timeMs, diskBytes, nowMs);
      else await j.commit(w, h.lastSeq, h.timeMs, diskBytes, nowMs);
    } catch (err) {
      await this.undoTail(err, h.firstSeq);
      throw err;
    }
    if (diskBytes !== prevDiskBytes) this.sizes.push({ seq: h.firstSeq, diskBytes });
    this.points.addBatch(h.firstSeq, h.lastSeq, h.timeMs, (h.flags & FrameFlag.ORDERED) !== 0, tags);
    return rolled;
  }

  /**
   * Writes the batch's records to the replica: runs of WRITE records that follow each other on
   * the disk become one gathered write; when no two records overlap, a few writes are in
   * flight at once.
   */
  private async writeRecords(batch: PreparedBatch, plan: UndoPlan): Promise<void> {
    const jobs: Array<{ offset: number; bufs: Buffer[] }> = [];
    let run: { offset: number; end: number; bufs: Buffer[] } | undefined;
    const recs = batch.records;
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      if (r.type === RecordType.WRITE) {
        const data = writeData(r);
        if (run && run.end === r.offset && run.bufs.length < 1024) {
          run.bufs.push(data);
          run.end += data.length;
        } else {
          run = { offset: r.offset, end: r.offset + data.length, bufs: [data] };
          jobs.push(run);
        }
      } else if (r.type === RecordType.ZERO || r.type === RecordType.TRIM) {
        run = undefined;
        for (const [offset, length] of plan.zeroPieces.get(i) ?? []) {
          const bufs: Buffer[] = [];
          for (let at = 0; at < length; at += ZEROS.length) bufs.push(ZEROS.subarray(0, Math.min(ZEROS.length, length - at)));
          jobs.push({ offset, bufs });
        }
      }
    }
    if (plan.overlapping) {
      for (const job of jobs) await this.replica.writev(job.offset, job.bufs);
      return;
    }
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < jobs.length && !failed) {
        const job = jobs[next++];
        try {
          await this.replica.writev(job.offset, job.bufs);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    // Every write settles before a failure is reported: a rollback must not run while writes of
    // the batch it undoes are still landing on the replica.
    const settled = await Promise.allSettled(Array.from({ length: Math.min(WRITES_IN_FLIGHT, jobs.length) }, worker));
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /**
   * Rolls back a failed batch (and forgets its undo items once the replica is restored); if
   * even that fails, refuses batches until it succeeds.
   */
  private async undoTail(cause: unknown, indexedFrom?: number): Promise<void> {
    try {
      await this.rollback(indexedFrom);
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

  /** Rolls the journal's tail back; readers retry reads that overlap it (see `rollbackEpoch`). */
  private async rollback(indexedFrom?: number): Promise<void> {
    this.epoch++;
    try {
      await this.journal.rollbackTail(this.replica);
      this.index.removeFrom(indexedFrom ?? this.journal.nextSeq);
    } finally {
      this.epoch++;
    }
  }

  private async recover(): Promise<void> {
    try {
      await this.rollback();
      this.broken = undefined;
    } catch (err) {
      throw new StreamUnavailableError(`stream ${this.machine}/${this.disk} cannot roll back its last failed batch: ${(err as Error).message}`, {
        cause: err,
        hint: 'free space in the data directory; the master target retries on the next batch or at restart',
      });
    }
  }

  get rollbackEpoch(): number {
    return this.epoch;
  }

  segmentPath(firstSeq: number): string {
    return this.journal.segmentPath(firstSeq);
  }

  /** The point at `seq` as stored in a segment header, if `seq` is a point. */
  private pointAt(seq: number): StoredPoint | undefined {
    const p = this.points.pointAt(seq);
    if (!p) return undefined;
    return { kind: p.kind, timeMs: Date.parse(p.time), ...(p.name !== undefined ? { name: p.name } : {}) };
  }

  /** The disk's size at `seq` (the size after the entry holding it). */
  sizeAt(seq: number): number {
    for (let i = this.sizes.length - 1; i >= 0; i--) if (this.sizes[i].seq <= seq) return this.sizes[i].diskBytes;
    return this.journal.segments[0]?.diskBytes ?? 0;
  }

  /**
   * Opens a reader of the disk at `seq` (oldestSeq ≤ seq ≤ nextSeq − 1). It copies nothing and
   * takes no lock; it pins the journal until closed, so retention keeps what it reads.
   */
  openReader(seq: number): PointInTimeReader {
    if (!Number.isSafeInteger(seq) || seq > this.journal.nextSeq - 1 || seq < this.oldestSeq) {
      throw new PointOutOfRangeError(`seq ${seq} is outside ${this.oldestSeq}..${this.journal.nextSeq - 1}`, {
        hint: 'list the points this disk still holds',
      });
    }
    const pin = this.journal.pin(seq);
    const reader = new PointInTimeReader(seq, this.sizeAt(seq), this, {
      seq,
      release: () => {
        pin.release();
        this.readers.delete(reader);
      },
    });
    this.readers.add(reader);
    return reader;
  }

  /** Readers open on this stream. */
  get openReaders(): number {
    return this.readers.size;
  }

  /** Deletes segments older than the window; returns how many. */
  retain(cutoffMs: number): Promise<number> {
    return this.lock.run(async () => {
      const dropped = await this.journal.dropOlderThan(cutoffMs);
      if (dropped) this.afterDrop(dropped, 'journal segments deleted by retention');
      return dropped;
    });
  }

  /** Bytes of journal on disk (committed lengths of every segment). */
  get journalBytes(): number {
    let bytes = 0;
    for (const s of this.journal.segments) bytes += s.committedBytes;
    return bytes;
  }

  /** Time of the newest entry of the oldest segment space limits may delete (see `dropOldestSegment`), if any. */
  get oldestDroppableTimeMs(): number | undefined {
    return this.journal.oldestDroppable()?.newestTimeMs;
  }

  /**
   * Deletes the oldest segment, inside the window, to make room (`space-limits.ts`): the
   * window's start moves up. Returns the bytes it held, 0 when none may go.
   */
  dropOldestSegment(reason: string): Promise<number> {
    return this.lock.run(async () => {
      const bytes = this.journal.oldestDroppable()?.committedBytes ?? 0;
      const dropped = await this.journal.dropOldest((_, soFar) => soFar === 0);
      if (!dropped) return 0;
      this.shortenedForSpaceMs = Date.now();
      this.afterDrop(dropped, `journal segment deleted inside the retention window: ${reason}`, 'warn');
      return bytes;
    });
  }

  /** Forgets what the deleted segments held: undo index, disk sizes and points before the new oldest segment. */
  private afterDrop(dropped: number, message: string, level: 'info' | 'warn' = 'info'): void {
    const oldest = this.journal.segments[0];
    this.index.dropBefore(oldest.firstSeq);
    while (this.sizes.length > 1 && this.sizes[1].seq <= oldest.firstSeq) this.sizes.shift();
    this.points.dropBefore(oldest.firstSeq - 1);
    if (oldest.basePoint) this.points.addBase(oldest.firstSeq - 1, oldest.basePoint);
    this.log[level](message, { machine: this.machine, disk: this.disk, segments: dropped, oldestSeq: oldest.firstSeq - 1 });
  }

  /**
   * Compacts the sealed segments whose points are all past the full tier and of which the
   * tiers dropped some point (docs/journal-format.md, "Compaction"). Each segment is rewritten
   * outside the lock; only the swap (rename, index, points) takes it. Returns how many segments
   * were rewritten and the bytes they shrank by.
   */
  compact(policy: TierPolicy, nowMs: number): Promise<{ segments: number; savedBytes: number }> {
    // One compaction per stream at a time: a second caller waits for the running one.
    this.compacting ??= this.compactSealed(policy, nowMs).finally(() => (this.compacting = undefined));
    return this.compacting;
  }

  private async compactSealed(policy: TierPolicy, nowMs: number): Promise<{ segments: number; savedBytes: number }> {
    let segments = 0;
    let savedBytes = 0;
    const fullCutoffMs = nowMs - policy.fullSeconds * 1000;
    for (const s of this.journal.segments.slice(0, -1)) {
      if (s.newestTimeMs >= fullCutoffMs) break;
      const plan = this.compactionPlan(s.firstSeq, s.lastSeq, policy, nowMs);
      if (!plan) continue;
      const out = await compactSegment({ path: s.path, firstSeq: s.firstSeq, lastSeq: s.lastSeq, ends: plan.ends, points: plan.points });
      const swapped = await this.lock.run(async () => {
        // A reader opened meanwhile at a point inside the segment must stay an interval end.
        const ends = new Set(plan.ends);
        if (this.journal.pinnedSeqs().some((p) => p >= s.firstSeq && p < s.lastSeq && !ends.has(p))) {
          await unlink(out.tmpPath).catch(() => undefined);
          return false;
        }
        const before = s.committedBytes;
        // Readers that looked items up before the swap retry (see PointInTimeReader).
        this.epoch++;
        try {
          if (!(await this.journal.replaceSegment(s.firstSeq, out.tmpPath, out.committedBytes))) return false;
          this.index = this.index.withSegmentReplaced(s.firstSeq, out.items);
          this.points.replaceRange(s.firstSeq, s.lastSeq, [...plan.points].map(([seq, point]) => ({ seq, point })));
        } finally {
          this.epoch++;
        }
        savedBytes += before - out.committedBytes;
        return true;
      });
      if (!swapped) continue;
      await this.journal.syncDir();
      segments++;
      this.log.info('journal segment compacted', { machine: this.machine, disk: this.disk, firstSeq: s.firstSeq, lastSeq: s.lastSeq, entries: out.entries, bytes: s.committedBytes });
    }
    return { segments, savedBytes };
  }

  /** Interval ends and kept points of a segment, or undefined when the tiers drop none of its points. */
  private compactionPlan(firstSeq: number, lastSeq: number, policy: TierPolicy, nowMs: number): { ends: number[]; points: Map<number, StoredPoint> } | undefined {
    const inSegment = this.points.list({ sinceSeq: firstSeq - 1, limit: lastSeq - firstSeq + 1 }).filter((p) => p.seq <= lastSeq);
    const cache = new Map<string, number | undefined>();
    const pinned = new Set(this.journal.pinnedSeqs());
    const points = new Map<number, StoredPoint>();
    let dropped = 0;
    for (const p of inSegment) {
      if (isKept(p, this.points, nowMs, policy, cache) || pinned.has(p.seq)) {
        points.set(p.seq, { kind: p.kind, timeMs: Date.parse(p.time), ...(p.name !== undefined ? { name: p.name } : {}) });
      } else dropped++;
    }
    if (!dropped) return undefined;
    const ends = [...points.keys(), ...[...pinned].filter((p) => p >= firstSeq && p < lastSeq), lastSeq];
    return { ends, points };
  }

  close(): Promise<void> {
    return this.lock.run(async () => {
      await Promise.all([...this.readers].map((r) => r.close()));
      await this.journal.close();
      await this.replica.close();
    });
  }
}
