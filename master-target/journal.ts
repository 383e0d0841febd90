/**
 * The undo journal of one disk stream: its segments, appending and committing entries,
 * rolling back an uncommitted entry, rollover, deleting old segments, and pins that keep
 * segments alive while an export reads them. Format: docs/journal-format.md.
 */
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError } from '../core/errors.ts';
import { syncDir } from '../core/fsutil.ts';
import { scanOpenEntry, scanSegment, type EntryVisitor } from './journal-scan.ts';
import {
  decodeUndo,
  encodeCommit,
  encodeSegmentHeader,
  ItemReader,
  parseSegmentName,
  readSegmentHeader,
  segmentName,
  undoBytes,
  type StoredPoint,
} from './journal-segment.ts';
import type { Logger } from '../core/log.ts';
import type { ImageFile } from './replica.ts';

export interface SegmentInfo {
  firstSeq: number;
  path: string;
  createdMs: number;
  /** Committed length of the file: entries beyond it do not exist yet. */
  committedBytes: number;
  /** Last committed seq (firstSeq − 1 while empty). */
  lastSeq: number;
  /** Frame time of the newest committed entry (createdMs while empty). */
  newestTimeMs: number;
  /** The point at firstSeq − 1, from the header. */
  basePoint?: StoredPoint;
  /** Exports reading this segment. */
  pins: number;
}

/** Segments an export reads, with their committed lengths at the moment it was taken. */
export interface JournalPin {
  segments: Array<{ path: string; firstSeq: number; committedBytes: number }>;
  release(): void;
}

/** The journal holds something it cannot read back. */
export class JournalCorruptError extends TidemarkError {}

export class Journal {
  private active?: FileHandle;
  /** Seq after the last committed entry. */
  nextSeq = 1;
  /** Disk size after the last committed entry. */
  diskBytes = 0;

  private constructor(
    readonly dir: string,
    readonly segments: SegmentInfo[],
    private readonly log: Logger,
  ) {}

  /**
   * Opens the journal in `dir` (creating it), checks every segment, and rolls back an
   * uncommitted tail entry on `replica`. `onEntry` sees every committed entry, oldest first.
   */
  static async open(dir: string, replica: ImageFile, log: Logger, onEntry: EntryVisitor): Promise<Journal> {
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
        const scan = await scanSegment(fh, header.headerBytes, size, header.firstSeq, onEntry);
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
          committedBytes: scan.committedBytes,
          lastSeq: scan.lastSeq,
          newestTimeMs: scan.newestTimeMs ?? header.createdMs,
          pins: 0,
          ...(header.basePoint ? { basePoint: header.basePoint } : {}),
        };
        j.segments.push(info);
        j.nextSeq = scan.lastSeq + 1;
        j.diskBytes = scan.diskBytes ?? header.diskBytes;
        if (newest) {
          j.active = fh;
          if (scan.open || scan.committedBytes !== size) {
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
    if (s.lastSeq < s.firstSeq) return false;
    return s.committedBytes >= maxBytes || nowMs - s.createdMs >= maxAgeMs;
  }

  /** Starts a new segment at `nextSeq`; `basePoint` is the point at nextSeq − 1, if any. */
  async rollover(nowMs: number, basePoint?: StoredPoint): Promise<void> {
    const path = join(this.dir, segmentName(this.nextSeq));
    const header = encodeSegmentHeader({ firstSeq: this.nextSeq, createdMs: nowMs, diskBytes: this.diskBytes, ...(basePoint ? { basePoint } : {}) });
    const tmp = path + '.tmp';
    const fh = await open(tmp, 'w+');
    try {
      await fh.write(header, 0, header.length, 0);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await rename(tmp, path);
    await syncDir(this.dir);
    await this.active?.close();
    this.active = fh;
    this.segments.push({
      firstSeq: this.nextSeq,
      path,
      createdMs: nowMs,
      committedBytes: header.length,
      lastSeq: this.nextSeq - 1,
      newestTimeMs: nowMs,
      pins: 0,
      ...(basePoint ? { basePoint } : {}),
    });
  }

  /** A writer appending a new entry after the committed log of the newest segment. */
  entryWriter(): EntryWriter {
    if (!this.active || !this.newest) throw new Error('journal has no segment to write to');
    return new EntryWriter(this.active, this.newest.committedBytes);
  }

  /** Appends COMMIT after the entry `w` wrote, fsyncs, and advances the journal's position. */
  async commit(w: EntryWriter, lastSeq: number, timeMs: number, diskBytes: number, nowMs: number): Promise<void> {
    await w.push(encodeCommit({ lastSeq, committedMs: nowMs }));
    await w.flush();
    await this.active!.sync();
    const s = this.newest!;
    s.committedBytes = w.endBytes;
    s.lastSeq = lastSeq;
    s.newestTimeMs = timeMs;
    this.nextSeq = lastSeq + 1;
    this.diskBytes = diskBytes;
  }

  /** fsyncs the newest segment (after an entry's items, before the replica is touched). */
  async syncActive(): Promise<void> {
    await this.active!.sync();
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
    if (size > s.committedBytes) {
      const entry = await scanOpenEntry(fh, s.committedBytes, size);
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
      await fh.truncate(s.committedBytes);
    }
    await fh.sync();
  }

  /**
   * Deletes whole segments, oldest first, whose newest entry is older than `cutoffMs`; never
   * the newest segment nor a pinned one. Returns how many it deleted.
   */
  async dropOlderThan(cutoffMs: number): Promise<number> {
    let dropped = 0;
    while (this.segments.length > 1) {
      const s = this.segments[0];
      if (s.pins > 0 || s.newestTimeMs >= cutoffMs) break;
      await unlink(s.path);
      this.segments.shift();
      dropped++;
    }
    if (dropped) await syncDir(this.dir);
    return dropped;
  }

  /** The first seq whose undo records the journal still holds (its oldest point is one less). */
  get firstSeq(): number {
    return this.segments[0]?.firstSeq ?? this.nextSeq;
  }

  /** Keeps the segments holding seqs after `seq` from deletion until `release()`. */
  pin(seq: number): JournalPin {
    const held = this.segments.filter((s) => s.lastSeq > seq);
    for (const s of held) s.pins++;
    let released = false;
    return {
      segments: held.map((s) => ({ path: s.path, firstSeq: s.firstSeq, committedBytes: s.committedBytes })),
      release: () => {
        if (released) return;
        released = true;
        for (const s of held) s.pins--;
      },
    };
  }

  async close(): Promise<void> {
    await this.active?.close();
    this.active = undefined;
  }
}

const FLUSH_BYTES = 8 * 1024 * 1024;

/** Appends items at a known position, in large writes. */
export class EntryWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly fh: FileHandle,
    private at: number,
  ) {}

  /** Where the entry ends once everything pushed is flushed. */
  get endBytes(): number {
    return this.at + this.pendingBytes;
  }

  async push(parts: Buffer[]): Promise<void> {
    for (const p of parts) {
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (this.pendingBytes >= FLUSH_BYTES || this.pending.length >= 4096) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, this.at + done);
      done += bytesWritten;
    }
    this.at += buf.length;
  }
}
