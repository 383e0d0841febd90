/**
 * The undo journal of one disk stream: its segments, appending and committing entries,
 * rolling back an uncommitted entry, rollover, deleting old segments, pins that keep
 * segments alive while a reader needs them, and the map of written replica blocks.
 * Format: docs/journal-format.md.
 */
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../core/errors.ts';
import { syncDir } from '../core/fsutil.ts';
import { scanOpenEntry, scanSegment, type UndoLocation } from './journal-scan.ts';
import { writevAll } from '../core/file-io.ts';
import { resultHolds } from './journal-result.ts';
import { WrittenMap } from './written-map.ts';
import {
  decodeCommit,
  decodeUndo,
  encodeCommit,
  ItemType,
  JOURNAL_VERSION,
  encodeSegmentHeader,
  ItemReader,
  parseSegmentName,
  readSegmentHeader,
  segmentName,
  undoBytes,
  type Begin,
  type StoredPoint,
} from './journal-segment.ts';
import type { Logger } from '../core/log.ts';
import type { ImageFile } from './replica.ts';

export interface SegmentInfo {
  firstSeq: number;
  path: string;
  createdMs: number;
  /** Disk size at firstSeq − 1, from the header. */
  diskBytes: number;
  /** Committed length of the file: entries beyond it do not exist yet. */
  committedBytes: number;
  /** Last committed seq (firstSeq − 1 while empty). */
  lastSeq: number;
  /** Frame time of the newest committed entry (createdMs while empty). */
  newestTimeMs: number;
  /** The point at firstSeq − 1, from the header. */
  basePoint?: StoredPoint;
  /** Format version of the segment (a newest segment of an older version is rolled over before appending). */
  version: number;
}

/**
 * The newest entry when it is acknowledged but its COMMIT is not written yet: its RESULT and
 * the replica are durable, so recovery would commit it (docs/journal-format.md). Its COMMIT
 * goes at `endBytes`, ahead of the next entry, or alone at rollover and close.
 */
interface PendingCommit {
  lastSeq: number;
  committedMs: number;
  endBytes: number;
}

/** Keeps every segment holding undo records after `seq` from deletion until released. */
export interface JournalPin {
  readonly seq: number;
  release(): void;
}

/** Sees one committed entry of the segment starting at `segment`, oldest first. */
export type JournalEntryVisitor = (segment: number, begin: Begin, tags: Array<{ seq: number; point: StoredPoint }>, undo: UndoLocation[]) => void;

/** The journal holds something it cannot read back. */
export class JournalCorruptError extends TidemarkError {}

export class Journal {
  private active?: FileHandle;
  /** Seq after the last committed entry. */
  nextSeq = 1;
  /** Disk size after the last committed entry. */
  diskBytes = 0;
  /** Replica blocks that may hold non-zero bytes (conservative; see WrittenMap). */
  written = new WrittenMap();
  /** Seqs pinned by open readers, with their counts. */
  private readonly pins = new Map<number, number>();
  private pending?: PendingCommit;

  private constructor(
    readonly dir: string,
    readonly segments: SegmentInfo[],
    private readonly log: Logger,
  ) {}

  /**
   * Opens the journal in `dir` (creating it), checks every segment, and rolls back an
   * uncommitted tail entry on `replica`. `onEntry` sees every committed entry, oldest first.
   */
  static async open(dir: string, replica: ImageFile, log: Logger, onEntry: JournalEntryVisitor): Promise<Journal> {
    await mkdir(dir, { recursive: true });
    const names = await readdir(dir);
    for (const n of names.filter((n) => n.endsWith('.tmp'))) await unlink(join(dir, n));
    const seqs = names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    const j = new Journal(dir, [], log);
    for (let i = 0; i < seqs.length; i++) {
      const path = join(dir, segmentName(seqs[i]));
      const newest = i === seqs.length - 1;
      const fh = await open(path, newest ? 'r+' : 'r');
      try {
        const header = await readSegmentHeader(fh, path);
        if (header.firstSeq !== seqs[i]) throw new JournalCorruptError(`journal segment ${path} says it starts at seq ${header.firstSeq}`);
        if (i > 0 && header.firstSeq !== j.nextSeq) {
          throw new JournalCorruptError(`journal segment ${path} starts at seq ${header.firstSeq}, the previous one ends at ${j.nextSeq - 1}`, {
            hint: 'a segment is missing; move the stream directory aside and let the process server resend it',
          });
        }
        const { size } = await fh.stat();
        if (newest) j.written = header.written;
        const scan = await scanSegment(fh, header.headerBytes, size, header.firstSeq, (begin, tags, undo) => {
          if (newest) for (const u of undo) j.written.mark(u.offset, u.lengthBytes);
          onEntry(header.firstSeq, begin, tags, undo);
        });
        // Bytes an interrupted entry may have written: marked before the rollback restores them.
        if (newest) for (const u of scan.open?.undo ?? []) j.written.mark(u.offset, u.lengthBytes);
        if (!newest && (scan.open || scan.stoppedBy || scan.committedBytes !== size)) {
          throw new JournalCorruptError(`journal segment ${path} is damaged at byte ${scan.committedBytes}`, {
            cause: scan.stoppedBy,
            hint: 'restore the data directory from a backup, or move the stream directory aside to start it afresh',
          });
        }
        const info: SegmentInfo = {
          firstSeq: header.firstSeq,
          path,
          createdMs: header.createdMs,
          diskBytes: header.diskBytes,
          committedBytes: scan.committedBytes,
          lastSeq: scan.lastSeq,
          newestTimeMs: scan.newestTimeMs ?? header.createdMs,
          ...(header.basePoint ? { basePoint: header.basePoint } : {}),
          version: header.version,
        };
        j.segments.push(info);
        j.nextSeq = scan.lastSeq + 1;
        j.diskBytes = scan.diskBytes ?? header.diskBytes;
        if (newest) {
          j.active = fh;
          const open = scan.open;
          if (open?.result && (await resultHolds(replica, open.begin, open.result))) {
            // Acknowledged (or as good as): its RESULT and replica bytes are there; write its COMMIT.
            await replica.sync();
            const w = new EntryWriter(fh, open.endBytes);
            w.push(encodeCommit({ lastSeq: open.begin.lastSeq, committedMs: open.begin.appliedMs }));
            await w.flush();
            await fh.truncate(w.endBytes);
            await fh.sync();
            onEntry(header.firstSeq, open.begin, open.tags, open.undo);
            Object.assign(info, { committedBytes: w.endBytes, lastSeq: open.begin.lastSeq, newestTimeMs: open.begin.timeMs });
            j.nextSeq = open.begin.lastSeq + 1;
            j.diskBytes = open.begin.diskBytes;
            log.info('batch committed at recovery', { segment: path, firstSeq: open.begin.firstSeq, lastSeq: open.begin.lastSeq });
          } else if (open || scan.committedBytes !== size) {
            log.warn('journal tail not committed, rolling back', { segment: path, fromByte: scan.committedBytes, fileBytes: size, reason: scan.stoppedBy?.message });
            await j.rollbackTail(replica);
          }
        }
      } finally {
        if (!newest) await fh.close();
      }
    }
    return j;
  }

  /** The newest segment, if any. */
  get newest(): SegmentInfo | undefined {
    return this.segments.at(-1);
  }

  /** True when the next entry should start a new segment. */
  needsRollover(nowMs: number, maxBytes: number, maxAgeMs: number): boolean {
    const s = this.newest;
    if (!s) return true;
    if (s.version !== JOURNAL_VERSION) return true;
    if (s.lastSeq < s.firstSeq) return false;
    return s.committedBytes >= maxBytes || nowMs - s.createdMs >= maxAgeMs;
  }

  /** Starts a new segment at `nextSeq`; `basePoint` is the point at nextSeq − 1, if any. */
  async rollover(nowMs: number, basePoint?: StoredPoint): Promise<void> {
    // Sealed segments hold committed entries only.
    await this.flushPending();
    const path = join(this.dir, segmentName(this.nextSeq));
    const header = encodeSegmentHeader({
      firstSeq: this.nextSeq,
      createdMs: nowMs,
      diskBytes: this.diskBytes,
      written: this.written,
      ...(basePoint ? { basePoint } : {}),
    });
    const tmp = path + '.tmp';
    const fh = await open(tmp, 'w+');
    try {
      await writevAll(fh, [header], 0);
      await fh.datasync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await rename(tmp, path);
    await syncDir(this.dir);
    await this.active?.close();
    this.active = fh;
    // An empty segment of an older version had the same name: the new one replaced it.
    if (this.newest?.firstSeq === this.nextSeq) this.segments.pop();
    this.segments.push({
      firstSeq: this.nextSeq,
      path,
      createdMs: nowMs,
      diskBytes: this.diskBytes,
      committedBytes: header.length,
      lastSeq: this.nextSeq - 1,
      newestTimeMs: nowMs,
      ...(basePoint ? { basePoint } : {}),
      version: JOURNAL_VERSION,
    });
  }

  /**
   * A writer appending a new entry after the log of the newest segment. When the previous
   * entry's COMMIT is pending, the writer writes it first: it becomes durable with this entry's
   * items, in the same write and sync.
   */
  entryWriter(): EntryWriter {
    if (!this.active || !this.newest) throw new Error('journal has no segment to write to');
    const p = this.pending;
    if (!p) return new EntryWriter(this.active, this.newest.committedBytes);
    const w = new EntryWriter(this.active, p.endBytes);
    w.push(encodeCommit({ lastSeq: p.lastSeq, committedMs: p.committedMs }));
    w.carried = { lastSeq: p.lastSeq, endBytes: w.endBytes };
    return w;
  }

  /** fdatasyncs the entry `w` wrote (before the replica is touched); a COMMIT it carried is now durable. */
  async syncEntry(w: EntryWriter): Promise<void> {
    await this.active!.datasync();
    if (w.carried && this.pending?.lastSeq === w.carried.lastSeq) {
      this.newest!.committedBytes = w.carried.endBytes;
      this.pending = undefined;
    }
  }

  /** Appends COMMIT after the entry `w` wrote, fdatasyncs, and advances the journal's position. */
  async commit(w: EntryWriter, lastSeq: number, timeMs: number, diskBytes: number, nowMs: number): Promise<void> {
    w.push(encodeCommit({ lastSeq, committedMs: nowMs }));
    await w.flush();
    await this.active!.datasync();
    this.newest!.committedBytes = w.endBytes;
    this.advance(lastSeq, timeMs, diskBytes);
  }

  /**
   * Advances the journal's position past the entry `w` wrote without writing its COMMIT: the
   * entry has a RESULT and the replica is synced, so it is durable as it stands (recovery
   * commits it). The COMMIT follows with the next entry, or at rollover or close.
   */
  acknowledge(w: EntryWriter, lastSeq: number, timeMs: number, diskBytes: number, nowMs: number): void {
    this.pending = { lastSeq, committedMs: nowMs, endBytes: w.endBytes };
    this.advance(lastSeq, timeMs, diskBytes);
  }

  private advance(lastSeq: number, timeMs: number, diskBytes: number): void {
    const s = this.newest!;
    s.lastSeq = lastSeq;
    s.newestTimeMs = timeMs;
    this.nextSeq = lastSeq + 1;
    this.diskBytes = diskBytes;
  }

  /** Writes and syncs a pending COMMIT, if any. */
  async flushPending(): Promise<void> {
    const p = this.pending;
    if (!p || !this.active) return;
    const w = new EntryWriter(this.active, p.endBytes);
    w.push(encodeCommit({ lastSeq: p.lastSeq, committedMs: p.committedMs }));
    await w.flush();
    await this.active.datasync();
    this.newest!.committedBytes = w.endBytes;
    this.pending = undefined;
  }

  /** The path of the segment starting at `firstSeq`. */
  segmentPath(firstSeq: number): string {
    return join(this.dir, segmentName(firstSeq));
  }

  /**
   * Undoes whatever follows the committed log of the newest segment: lays the UNDO items of
   * an uncommitted entry back on `replica` (newest first), restores its size, fsyncs it, then
   * truncates the segment. Safe to repeat.
   */
  async rollbackTail(replica: ImageFile): Promise<void> {
    const s = this.newest;
    const fh = this.active;
    if (!s || !fh) return;
    const { size } = await fh.stat();
    // An acknowledged entry waiting for its COMMIT stays; a COMMIT of it already written stays too.
    let keep = this.pending?.endBytes ?? s.committedBytes;
    if (this.pending && size > keep) {
      const first = await new ItemReader(fh, keep, size).next().catch(() => undefined);
      if (first?.type === ItemType.COMMIT && decodeCommit(first.body).lastSeq === this.pending.lastSeq) {
        keep = first.at + first.itemBytes;
        s.committedBytes = keep;
        this.pending = undefined;
      }
    }
    if (size > keep) {
      const entry = await scanOpenEntry(fh, keep, size);
      if (entry) {
        for (let i = entry.undo.length - 1; i >= 0; i--) {
          const loc = entry.undo[i];
          const item = await new ItemReader(fh, loc.at, loc.at + loc.itemBytes).next();
          const u = decodeUndo(item!.body);
          const old = undoBytes(u);
          if (old) await replica.write(u.offset, old);
          else await replica.zero(u.offset, u.lengthBytes);
        }
        if (replica.sizeBytes !== entry.begin.prevDiskBytes) await replica.resize(entry.begin.prevDiskBytes);
        await replica.sync();
        this.log.info('uncommitted batch rolled back', { firstSeq: entry.begin.firstSeq, lastSeq: entry.begin.lastSeq, undoItems: entry.undo.length });
      }
      await fh.truncate(keep);
    }
    await fh.sync();
  }

  /**
   * Deletes whole segments, oldest first, whose newest entry is older than `cutoffMs`; never
   * the newest segment nor one holding undo records after a pinned seq. Returns how many it
   * deleted.
   */
  dropOlderThan(cutoffMs: number): Promise<number> {
    return this.dropOldest((s) => s.newestTimeMs < cutoffMs);
  }

  /**
   * The oldest segment that may be deleted, if any: never the newest, and never one holding
   * undo records of seqs after a pinned point.
   */
  oldestDroppable(): SegmentInfo | undefined {
    const s = this.segments[0];
    if (this.segments.length < 2) return undefined;
    const pinned = this.pins.size ? Math.min(...this.pins.keys()) : Number.POSITIVE_INFINITY;
    return s.lastSeq > pinned ? undefined : s;
  }

  /** Deletes droppable segments, oldest first, while `drop(segment, droppedSoFar)` says so; returns how many. */
  async dropOldest(drop: (s: SegmentInfo, droppedSoFar: number) => boolean): Promise<number> {
    let dropped = 0;
    for (let s = this.oldestDroppable(); s && drop(s, dropped); s = this.oldestDroppable()) {
      await unlink(s.path);
      this.segments.shift();
      dropped++;
    }
    if (dropped) await syncDir(this.dir);
    return dropped;
  }

  /** The seqs pinned by open readers. */
  pinnedSeqs(): number[] {
    return [...this.pins.keys()];
  }

  /**
   * Puts a compacted segment (synced under `tmpPath`) in place of the sealed segment starting
   * at `firstSeq`: rename over it, then sync the directory. A crash leaves either file, both
   * whole. Returns false (and removes `tmpPath`) when that segment is gone meanwhile.
   */
  async replaceSegment(firstSeq: number, tmpPath: string, committedBytes: number): Promise<boolean> {
    const s = this.segments.find((x) => x.firstSeq === firstSeq);
    if (!s || s === this.newest) {
      await unlink(tmpPath).catch(() => undefined);
      return false;
    }
    await rename(tmpPath, s.path);
    s.committedBytes = committedBytes;
    return true;
  }

  /** Syncs the journal directory (after a rename that need not be durable at once). */
  syncDir(): Promise<void> {
    return syncDir(this.dir);
  }

  /** The first seq whose undo records the journal still holds (its oldest point is one less). */
  get firstSeq(): number {
    return this.segments[0]?.firstSeq ?? this.nextSeq;
  }

  /** Keeps every segment holding undo records of seqs after `seq` (now or later) from deletion until `release()`. */
  pin(seq: number): JournalPin {
    this.pins.set(seq, (this.pins.get(seq) ?? 0) + 1);
    let released = false;
    return {
      seq,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.pins.get(seq) ?? 1) - 1;
        if (n > 0) this.pins.set(seq, n);
        else this.pins.delete(seq);
      },
    };
  }

  /** Number of open pins (tests, status). */
  get pinCount(): number {
    let n = 0;
    for (const c of this.pins.values()) n += c;
    return n;
  }

  async close(): Promise<void> {
    try {
      await this.flushPending();
    } catch (err) {
      // Recovery commits the entry from its RESULT all the same.
      this.log.warn('could not write the last COMMIT at close', { dir: this.dir, error: err });
    }
    await this.active?.close();
    this.active = undefined;
  }
}

/** Parts shorter than this are copied into a shared buffer instead of being gathered one by one. */
const SMALL_PART_BYTES = 16 * 1024;
/**
 * An entry's first arena: most entries' small parts (headers, RESULT, COMMIT) fit in it. Each
 * further arena is four times larger, up to ARENA_BYTES. A megabyte for every entry would be
 * mostly unused, and its memory, outside V8's heap but counted by it, brings on full
 * collections every few dozen batches.
 */
const FIRST_ARENA_BYTES = 16 * 1024;
const ARENA_BYTES = 1024 * 1024;

/**
 * Appends items at a known position. Everything pushed is written by `flush()` in one
 * gathered write (small parts are first packed together), so an entry costs one syscall.
 */
export class EntryWriter {
  /** The previous entry's COMMIT written ahead of this entry, and where it ends. */
  carried?: { lastSeq: number; endBytes: number };
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private arena = Buffer.allocUnsafe(0);
  private arenaStart = 0;
  private arenaUsed = 0;

  constructor(
    private readonly fh: FileHandle,
    private at: number,
  ) {}

  /** Where the entry ends once everything pushed is flushed. */
  get endBytes(): number {
    return this.at + this.pendingBytes;
  }

  /** Queues one item's parts; returns where the item starts in the file. */
  push(parts: Buffer[]): number {
    const itemAt = this.endBytes;
    for (const p of parts) {
      if (p.length < SMALL_PART_BYTES) {
        if (this.arenaUsed + p.length > this.arena.length) {
          this.sealArena();
          this.arena = Buffer.allocUnsafe(this.arena.length ? Math.min(ARENA_BYTES, this.arena.length * 4) : FIRST_ARENA_BYTES);
          this.arenaStart = this.arenaUsed = 0;
        }
        p.copy(this.arena, this.arenaUsed);
        this.arenaUsed += p.length;
      } else {
        this.sealArena();
        this.pending.push(p);
      }
      this.pendingBytes += p.length;
    }
    return itemAt;
  }

  private sealArena(): void {
    if (this.arenaUsed > this.arenaStart) this.pending.push(this.arena.subarray(this.arenaStart, this.arenaUsed));
    this.arenaStart = this.arenaUsed;
  }

  async flush(): Promise<void> {
    this.sealArena();
    if (!this.pendingBytes) return;
    const bufs = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    await writevAll(this.fh, bufs, this.at);
    this.at += total;
  }
}
