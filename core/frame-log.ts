/**
 * An append-only log of frames in segment files: the process server's spool and the agent's
 * change log. Frames are self-delimiting and self-checking (docs/wire-format.md), so recovery
 * reads every segment, keeps the contiguous intact prefix and cuts a torn tail.
 *
 * Appends are synchronous (one `write` call, no fsync) so that a caller can order an append
 * with other synchronous work, e.g. the write it records; `sync()` makes everything appended
 * so far durable.
 */
import { openSync, readSync, writeSync, writevSync, fdatasyncSync, ftruncateSync, closeSync, fstatSync, readdirSync, unlinkSync, mkdirSync, read, write, fdatasync, ftruncate, close } from 'node:fs';
import { writev as writevCb } from 'node:fs';
import { unlink as unlinkAsync } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readFrameHeader, verifyFrame, FRAME_HEADER_BYTES, type FrameHeader } from './wire/frame.ts';
import { syncDir } from './fsutil.ts';
import { partsFrom } from './buffer-parts.ts';
import type { Logger } from './log.ts';
import type { FrameMeta } from './wire/record-frame.ts';

/** A segment is closed and a new one started once it reaches this size. */
export const LOG_SEGMENT_BYTES = 64 * 1024 * 1024;

interface Segment {
  name: string;
  fd: number;
  sizeBytes: number;
  /** Entries of this segment still pending. */
  live: number;
  dirty: boolean;
  /** Appends or reads under way on the thread pool: the segment is not removed meanwhile. */
  busy: number;
}

const readAsync = promisify(read);
const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const ftruncateAsync = promisify(ftruncate);
const closeAsync = promisify(close);

export interface LogEntry {
  firstSeq: number;
  lastSeq: number;
  timeMs: number;
  flags: number;
  bytes: number;
  segment: Segment;
  offset: number;
}

export class LogDamagedError extends Error {}

export interface FrameLogOptions {
  /**
   * Delete segments left empty on the thread pool, in order, instead of on the caller's
   * thread (deleting a large file takes milliseconds). `sync()` and `appendDurable()` still
   * wait for them before syncing the folder.
   */
  removeInBackground?: boolean;
}

export class FrameLog {
  /** Entries before `head` were dropped; the array is compacted now and then. */
  private entries: LogEntry[] = [];
  private head = 0;
  private readonly segments: Segment[] = [];
  private pendingBytes = 0;
  private dirNeedsSync = false;
  /** An `appendDurable` or `appendPartsAsync` is under way: no other append may start. */
  private appending = false;

  /** Segments being closed and deleted on the thread pool, one after another (with `removeInBackground`). */
  private removals: Promise<void> = Promise.resolve();

  private constructor(readonly dir: string, private readonly suffix: string, private readonly log: Logger, private readonly options: FrameLogOptions) {}

  /** Opens (or creates) a log, checking every frame and cutting a torn tail. */
  static async open(dir: string, suffix: string, log: Logger, options: FrameLogOptions = {}): Promise<FrameLog> {
    mkdirSync(dir, { recursive: true });
    const fl = new FrameLog(dir, suffix, log, options);
    const pattern = new RegExp(`^[0-9a-f]{16}\\.${suffix}$`);
    const names = readdirSync(dir).filter((n) => pattern.test(n)).sort();
    for (let i = 0; i < names.length; i++) {
      if (!fl.load(names[i], i === names.length - 1)) {
        // Later segments cannot continue the stream: keep what is contiguous.
        for (const rest of names.slice(i + 1)) {
          log.error('log segment dropped after damage', { dir, segment: rest });
          unlinkSync(join(dir, rest));
        }
        break;
      }
    }
    await syncDir(dir);
    return fl;
  }

  private load(name: string, isLast: boolean): boolean {
    const fd = openSync(join(this.dir, name), 'r+');
    const size = fstatSync(fd).size;
    const seg: Segment = { name, fd, sizeBytes: 0, live: 0, dirty: false, busy: 0 };
    let at = 0;
    let intact = true;
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    while (at < size) {
      let header: FrameHeader;
      try {
        const got = readSync(fd, head, 0, FRAME_HEADER_BYTES, at);
        const h = readFrameHeader(head.subarray(0, got));
        if (at + h.totalBytes > size) throw new Error('frame runs past the end of the segment');
        const frame = Buffer.alloc(h.totalBytes);
        readSync(fd, frame, 0, h.totalBytes, at);
        header = verifyFrame(frame);
        const expected = this.nextSeq;
        if (expected !== undefined && header.firstSeq !== expected) throw new Error(`frame starts at seq ${header.firstSeq}, expected ${expected}`);
      } catch (e) {
        intact = false;
        const msg = { dir: this.dir, segment: name, offsetBytes: at, sizeBytes: size, error: (e as Error).message };
        if (isLast) this.log.warn('log: cutting a torn tail (a write that was never acknowledged)', msg);
        else this.log.error('log: damaged segment; frames after this point are lost', msg);
        ftruncateSync(fd, at);
        fdatasyncSync(fd);
        break;
      }
      this.entries.push({ firstSeq: header.firstSeq, lastSeq: header.lastSeq, timeMs: header.timeMs, flags: header.flags, bytes: header.totalBytes, segment: seg, offset: at });
      seg.live++;
      this.pendingBytes += header.totalBytes;
      at += header.totalBytes;
    }
    seg.sizeBytes = at;
    this.segments.push(seg);
    if (seg.live === 0 && !isLast) this.removeSegment(seg);
    return intact || isLast;
  }

  /** Seq after the newest frame, or undefined when the log is empty. */
  get nextSeq(): number | undefined {
    const last = this.entries.length > this.head ? this.entries[this.entries.length - 1] : undefined;
    return last ? last.lastSeq + 1 : undefined;
  }

  /** Seq of the oldest pending frame, or undefined when the log is empty. */
  get firstSeq(): number | undefined {
    return this.entries[this.head]?.firstSeq;
  }

  /** Bytes of frames still pending. */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** Pending entries, oldest first (a copy: for status and tests; use `from` on hot paths). */
  pending(): readonly LogEntry[] {
    return this.entries.slice(this.head);
  }

  /** Number of pending entries. */
  get pendingCount(): number {
    return this.entries.length - this.head;
  }

  /** The newest pending entry. */
  newest(): LogEntry | undefined {
    return this.entries.length > this.head ? this.entries[this.entries.length - 1] : undefined;
  }

  /** The oldest pending entry. */
  oldest(): LogEntry | undefined {
    return this.entries[this.head];
  }

  /** Pending entries holding seqs at or after `seq`, oldest first, without copying. */
  *from(seq: number): Generator<LogEntry> {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid].lastSeq < seq) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.entries.length; i++) yield this.entries[i];
  }

  /**
   * Appends a frame that starts at `nextSeq` (when the log is not empty), synchronously and
   * without fsync. On failure nothing of the frame stays behind.
   */
  appendSync(frame: Buffer, header: FrameHeader): void {
    this.checkNotAppending();
    const expected = this.nextSeq;
    if (expected !== undefined && header.firstSeq !== expected) throw new RangeError(`log append at seq ${header.firstSeq}, expected ${expected}`);
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.sizeBytes >= LOG_SEGMENT_BYTES) seg = this.newSegment(header.firstSeq);
    const at = seg.sizeBytes;
    try {
      let written = 0;
      while (written < frame.length) written += writeSync(seg.fd, frame, written, frame.length - written, at + written);
    } catch (e) {
      try {
        ftruncateSync(seg.fd, at);
      } catch {
        // The frame's checksum still keeps a partial write from being read back.
      }
      throw e;
    }
    seg.sizeBytes = at + frame.length;
    seg.live++;
    seg.dirty = true;
    this.pendingBytes += frame.length;
    this.entries.push({ firstSeq: header.firstSeq, lastSeq: header.lastSeq, timeMs: header.timeMs, flags: header.flags, bytes: frame.length, segment: seg, offset: at });
  }

  /**
   * Appends a frame that starts at `nextSeq` (when the log is not empty) and makes it durable,
   * with the write and the fdatasync on the thread pool, so the caller's thread goes on
   * meanwhile. The frame becomes an entry (readable, counted) once it is durable. One append
   * at a time: the caller serialises them. On failure nothing of the frame stays behind.
   */
  async appendDurable(frame: Buffer, header: FrameHeader): Promise<void> {
    if (this.appending) throw new Error('log append while another is under way');
    const expected = this.nextSeq;
    if (expected !== undefined && header.firstSeq !== expected) throw new RangeError(`log append at seq ${header.firstSeq}, expected ${expected}`);
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.sizeBytes >= LOG_SEGMENT_BYTES) seg = this.newSegment(header.firstSeq);
    const at = seg.sizeBytes;
    this.appending = true;
    seg.busy++;
    try {
      try {
        let written = 0;
        while (written < frame.length) written += (await writeAsync(seg.fd, frame, written, frame.length - written, at + written)).bytesWritten;
        seg.sizeBytes = at + frame.length;
        await fdatasyncAsync(seg.fd);
      } catch (e) {
        seg.sizeBytes = at;
        await ftruncateAsync(seg.fd, at).catch(() => {
          // The frame's checksum still keeps a partial write from being read back.
        });
        throw e;
      }
      await this.removals;
      if (this.dirNeedsSync) {
        this.dirNeedsSync = false;
        await syncDir(this.dir);
      }
    } finally {
      seg.busy--;
      this.appending = false;
    }
    seg.live++;
    this.pendingBytes += frame.length;
    this.entries.push({ firstSeq: header.firstSeq, lastSeq: header.lastSeq, timeMs: header.timeMs, flags: header.flags, bytes: frame.length, segment: seg, offset: at });
  }

  /**
   * Appends frames given as buffers that hold them back to back (`frames` says where each
   * ends), with as few writev calls as the kernel allows, synchronously and without fsync. The
   * first starts at `nextSeq` (when the log is not empty), each next one where the previous
   * ended. On failure nothing of them stays behind.
   */
  appendPartsSync(parts: Buffer[], frames: readonly FrameMeta[]): void {
    if (frames.length === 0) return;
    this.checkNotAppending();
    const { seg, at, total } = this.placeParts(parts, frames);
    try {
      let written = 0;
      let pending = parts;
      while (written < total) {
        const n = writevSync(seg.fd, pending, at + written);
        if (n <= 0) throw new Error(`log writev wrote nothing at byte ${at + written}`);
        written += n;
        if (written < total) pending = partsFrom(parts, written);
      }
    } catch (e) {
      try {
        ftruncateSync(seg.fd, at);
      } catch {
        // The frames' checksums still keep a partial write from being read back.
      }
      throw e;
    }
    this.addEntries(seg, at, total, frames);
  }

  /**
   * Like `appendPartsSync`, but the bytes are written by the thread pool; the frames become
   * pending entries (visible to `from`, `read`, `sync`) once written. No other append may start
   * before the returned promise settles. On failure nothing of them stays behind.
   */
  appendPartsAsync(parts: Buffer[], frames: readonly FrameMeta[]): Promise<void> {
    if (frames.length === 0) return Promise.resolve();
    this.checkNotAppending();
    const { seg, at, total } = this.placeParts(parts, frames);
    this.appending = true;
    // Counted as live at once, so that `dropThrough` keeps the segment open meanwhile.
    seg.live += frames.length;
    return new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        try {
          ftruncateSync(seg.fd, at);
        } catch {
          // The frames' checksums still keep a partial write from being read back.
        }
        seg.live -= frames.length;
        this.appending = false;
        reject(e);
      };
      const from = (written: number) => {
        writevCb(seg.fd, written ? partsFrom(parts, written) : parts, at + written, (err, n) => {
          if (err || n <= 0) return fail(err ?? new Error(`log writev wrote nothing at byte ${at + written}`));
          if (written + n < total) return from(written + n);
          this.appending = false;
          seg.live -= frames.length;
          this.addEntries(seg, at, total, frames);
          resolve();
        });
      };
      from(0);
    });
  }

  private checkNotAppending(): void {
    if (this.appending) throw new Error('log append while an asynchronous append is under way');
  }

  /** Where frames starting at the log's next seq go: the last segment, or a new one once it is full. */
  private placeParts(parts: Buffer[], frames: readonly FrameMeta[]): { seg: Segment; at: number; total: number } {
    const expected = this.nextSeq;
    if (expected !== undefined && frames[0].firstSeq !== expected) throw new RangeError(`log append at seq ${frames[0].firstSeq}, expected ${expected}`);
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.sizeBytes >= LOG_SEGMENT_BYTES) seg = this.newSegment(frames[0].firstSeq);
    let total = 0;
    for (const p of parts) total += p.length;
    return { seg, at: seg.sizeBytes, total };
  }

  private addEntries(seg: Segment, at: number, total: number, frames: readonly FrameMeta[]): void {
    let offset = at;
    for (const f of frames) {
      this.entries.push({ firstSeq: f.firstSeq, lastSeq: f.lastSeq, timeMs: f.timeMs, flags: f.flags, bytes: f.bytes, segment: seg, offset });
      offset += f.bytes;
    }
    seg.sizeBytes = at + total;
    seg.live += frames.length;
    seg.dirty = true;
    this.pendingBytes += total;
  }

  /** Makes the bytes of every frame appended so far durable (not yet a new segment's name). */
  syncDataSync(): void {
    for (const s of this.segments) {
      if (!s.dirty) continue;
      s.dirty = false;
      fdatasyncSync(s.fd);
    }
  }

  /** Makes every frame appended so far durable. */
  async sync(): Promise<void> {
    this.syncDataSync();
    await this.removals;
    if (this.dirNeedsSync) {
      this.dirNeedsSync = false;
      await syncDir(this.dir);
    }
  }

  private newSegment(firstSeq: number): Segment {
    const name = `${firstSeq.toString(16).padStart(16, '0')}.${this.suffix}`;
    const fd = openSync(join(this.dir, name), 'w+', 0o600);
    this.dirNeedsSync = true;
    const seg: Segment = { name, fd, sizeBytes: 0, live: 0, dirty: false, busy: 0 };
    this.segments.push(seg);
    return seg;
  }

  /**
   * Reads several pending frames back, with one read per run of entries that lie back to
   * back in the same segment.
   */
  readMany(list: readonly LogEntry[]): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < list.length; ) {
      let j = i + 1;
      let bytes = list[i].bytes;
      while (j < list.length && list[j].segment === list[i].segment && list[j].offset === list[j - 1].offset + list[j - 1].bytes) bytes += list[j++].bytes;
      const buf = Buffer.allocUnsafe(bytes);
      const got = readSync(list[i].segment.fd, buf, 0, bytes, list[i].offset);
      if (got !== bytes) throw new LogDamagedError(`log segment ${list[i].segment.name} is shorter than expected`);
      for (let k = i, at = 0; k < j; at += list[k].bytes, k++) out.push(buf.subarray(at, at + list[k].bytes));
      i = j;
    }
    return out;
  }

  /**
   * Reads pending frames back into `buf` (at least as long as they are together), one read on
   * the thread pool per run of entries that lie back to back in a segment; returns a view of
   * `buf` for each frame.
   */
  async readInto(list: readonly LogEntry[], buf: Buffer): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let at = 0;
    for (let i = 0; i < list.length; ) {
      let j = i + 1;
      let bytes = list[i].bytes;
      while (j < list.length && list[j].segment === list[i].segment && list[j].offset === list[j - 1].offset + list[j - 1].bytes) bytes += list[j++].bytes;
      const seg = list[i].segment;
      seg.busy++;
      try {
        let got = 0;
        while (got < bytes) {
          const n = (await readAsync(seg.fd, buf, at + got, bytes - got, list[i].offset + got)).bytesRead;
          if (n === 0) throw new LogDamagedError(`log segment ${seg.name} is shorter than expected`);
          got += n;
        }
      } finally {
        seg.busy--;
      }
      for (let k = i; k < j; at += list[k].bytes, k++) out.push(buf.subarray(at, at + list[k].bytes));
      i = j;
    }
    return out;
  }

  /** Reads one pending frame back. */
  read(entry: LogEntry): Buffer {
    const buf = Buffer.allocUnsafe(entry.bytes);
    const got = readSync(entry.segment.fd, buf, 0, entry.bytes, entry.offset);
    if (got !== entry.bytes) throw new LogDamagedError(`log segment ${entry.segment.name} is shorter than expected`);
    return buf;
  }

  /** Forgets every frame whose last seq is at or below `seq`; deletes segments left empty. */
  dropThrough(seq: number): void {
    while (this.head < this.entries.length && this.entries[this.head].lastSeq <= seq) {
      const e = this.entries[this.head++];
      this.pendingBytes -= e.bytes;
      e.segment.live--;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    for (const seg of [...this.segments]) {
      if (seg.live > 0 || seg.busy > 0) break;
      this.removeSegment(seg);
    }
  }

  /**
   * Cuts the log before the frame that starts at `seq` (it and every later frame go), durably.
   * For a synchronous caller with no append under way.
   */
  cutFrom(seq: number): void {
    this.checkNotAppending();
    let i = this.entries.length;
    while (i > this.head && this.entries[i - 1].firstSeq >= seq) i--;
    if (i === this.entries.length) return;
    const first = this.entries[i];
    if (first.firstSeq !== seq) throw new RangeError(`no frame of the log starts at seq ${seq}`);
    for (const e of this.entries.slice(i)) {
      this.pendingBytes -= e.bytes;
      e.segment.live--;
    }
    this.entries.length = i;
    const seg = first.segment;
    for (const later of this.segments.slice(this.segments.indexOf(seg) + 1)) {
      this.segments.splice(this.segments.indexOf(later), 1);
      closeSync(later.fd);
      unlinkSync(join(this.dir, later.name));
    }
    ftruncateSync(seg.fd, first.offset);
    fdatasyncSync(seg.fd);
    seg.sizeBytes = first.offset;
    this.dirNeedsSync = true;
  }

  /** Resolves once every segment deletion started so far has happened (with `removeInBackground`). */
  removalsDone(): Promise<void> {
    return this.removals;
  }

  private removeSegment(seg: Segment): void {
    this.segments.splice(this.segments.indexOf(seg), 1);
    this.dirNeedsSync = true;
    if (!this.options.removeInBackground) {
      closeSync(seg.fd);
      unlinkSync(join(this.dir, seg.name));
      return;
    }
    // In order: after a crash, a prefix of the deletions has happened, so what is left of the
    // log is still contiguous.
    const path = join(this.dir, seg.name);
    this.removals = this.removals.then(async () => {
      try {
        await closeAsync(seg.fd);
        await unlinkAsync(path);
      } catch (e) {
        this.log.warn('log: an empty segment was not deleted', { dir: this.dir, segment: seg.name, error: e as Error });
      }
    });
  }

  close(): void {
    for (const s of this.segments) {
      try {
        closeSync(s.fd);
      } catch {
        // already closed
      }
    }
    this.segments.length = 0;
  }
}
