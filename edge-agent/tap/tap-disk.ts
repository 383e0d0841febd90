/**
 * One disk in tap mode: served over NBD to its consumer, every write applied to the backing
 * file and recorded, as soon as it is there, in the change log (or, when the log is full, in
 * the dirty bitmap). Writes reach the file one after another in arrival order (small ones
 * synchronously, large ones through the thread pool: see WriteSequencer), and the initial sync
 * and resync reads take their turn in the same order, so the stream's order is the order the
 * disk saw.
 */
import { openSync, readSync, writeSync, closeSync, fstatSync, constants as fsConstants } from 'node:fs';
import { read as readCb, fdatasync as fdatasyncCb } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeFrame, encodeFrame, readFrameHeader, FrameFlag, RecordType, type BatchRecord, type DecodedFrame, type PointKind } from '../../core/wire/frame.ts';
import { FrameLog } from '../../core/frame-log.ts';
import { RecordFrameEncoder, heldRecordOf, type FrameMeta } from '../../core/wire/record-frame.ts';
import type { LogEntry } from '../../core/frame-log.ts';
import type { Logger } from '../../core/log.ts';
import { TidemarkError } from '../../core/errors.ts';
import { blockHash, xxh64Of } from '../../core/hash.ts';
import type { NbdExport } from '../../core/nbd/index.ts';
import { DirtyBitmap, BITMAP_BLOCK_BYTES } from './dirty-bitmap.ts';
import type { TapState } from './tap-state.ts';
import { WriteSequencer } from './write-sequencer.ts';
import { LogQueue } from './log-queue.ts';
import { HeldWrites } from './held-writes.ts';
import { HeldCopies } from './held-copies.ts';

const readAsync = promisify(readCb);
const fdatasyncAsync = promisify(fdatasyncCb);
const BLOCK = BITMAP_BLOCK_BYTES;
/** Reads up to this size are served synchronously: cheaper than the thread pool for small requests. */
const SYNC_READ_MAX_BYTES = 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);
/**
 * Frames up to this size wait for the burst's one log write; larger ones go to the log on
 * their own, without a copy, through the thread pool (see LogQueue).
 */
const PENDING_FRAME_MAX_BYTES = 64 * 1024 + 256;
/** Room for the pending frames of one burst; a fuller burst writes them in several calls. */
const PENDING_BYTES = 1024 * 1024;
/**
 * Writes of at least this size go to the file through the thread pool, while the event loop
 * receives and logs the next ones; smaller ones are written synchronously (cheaper than a trip
 * to the pool) unless earlier writes are still on their way.
 */
const POOL_WRITE_MIN_BYTES = 128 * 1024;
/**
 * Writes of at least this size are held: their record names the range and the data is read
 * from the disk when shipped (docs/agent-state.md, "Held writes"), so it is written once.
 */
export const HELD_MIN_BYTES = 128 * 1024;
/** What a held write counts against --max-log-bytes (it bounds the index kept in memory). */
const HELD_CHARGE_BYTES = 4096;
/** Blocks read per synchronous step of the initial sync or a resync round. */
export const SYNC_STEP_BLOCKS = 16;

/** An operation the disk's current phase does not allow. */
export class TapStateError extends TidemarkError {}

export type TapPhase = 'INITIAL_SYNC' | 'CONTINUOUS' | 'RESYNC';

export interface TapDiskOptions {
  machine: string;
  disk: string;
  path: string;
  stateDir: string;
  maxLogBytes: number;
  state: TapState;
  log: Logger;
}

export class TapDisk implements NbdExport {
  readonly name: string;
  readonly description: string;
  readonly sizeBytes: number;
  readonly readOnly = false;
  readonly multiConn = true;
  readonly changeLog: FrameLog;
  readonly bitmap: DirtyBitmap;
  /** Next sequence number to assign. */
  nextSeq: number;
  /** Blocks compared and sent by resyncs since the agent started. */
  readonly resyncStats = { comparedBlocks: 0, equalBlocks: 0, sentBlocks: 0, sentBytes: 0 };
  /** Counts stream restarts: replica hashes fetched before one no longer describe the stream. */
  streamRestarts = 0;
  /** Called after anything was appended to the change log. */
  onAppend: () => void = () => undefined;
  private readonly fd: number;
  private readonly writes: WriteSequencer;
  private readonly logQueue: LogQueue;
  private readonly zeroBlock = Buffer.alloc(BLOCK);
  private readonly encoder: RecordFrameEncoder;
  /** Frames of this burst's writes, back to back, not yet in the log (see `commit`). */
  private pending = { buf: Buffer.allocUnsafe(PENDING_BYTES), used: 0, frames: [] as FrameMeta[], ranges: [] as number[] };
  private commitQueued = false;
  /** Held writes not yet acknowledged, and copies of those whose bytes the consumer changed since. */
  readonly held = new HeldWrites();
  private readonly heldCopies: HeldCopies;
  /** Seqs below this are covered by a flush that has begun: copies of their data are fsynced. */
  private flushBeganNextSeq = 0;
  /** Seqs below this were covered by a finished flush (kept in `flushed-seq`). */
  private flushedNextSeq = 0;
  private readonly flushedFd: number;

  private constructor(readonly o: TapDiskOptions, changeLog: FrameLog, bitmap: DirtyBitmap, fd: number, sizeBytes: number, heldCopies: HeldCopies, flushedFd: number) {
    this.name = o.disk;
    this.description = `${o.machine}/${o.disk} (${o.path}), protected by tidemark`;
    this.changeLog = changeLog;
    this.bitmap = bitmap;
    this.fd = fd;
    this.writes = new WriteSequencer(fd);
    this.logQueue = new LogQueue(changeLog, { onWritten: () => this.onAppend(), onFailed: (e, seq) => this.logFailed(e, seq) });
    this.sizeBytes = sizeBytes;
    this.encoder = new RecordFrameEncoder(o.machine, o.disk, sizeBytes);
    this.nextSeq = Math.max(changeLog.nextSeq ?? 0, o.state.ackedNextSeq);
    this.heldCopies = heldCopies;
    this.flushedFd = flushedFd;
    this.flushedNextSeq = readFlushedNextSeq(flushedFd);
    this.flushBeganNextSeq = this.flushedNextSeq;
    this.rebuildHeld();
  }

  /** The held writes of the log, as it was read back. */
  private rebuildHeld(): void {
    const heldFrameBytes = this.encoder.frameBytes(0);
    for (const e of this.changeLog.pending()) {
      if (e.firstSeq !== e.lastSeq || e.bytes !== heldFrameBytes) continue;
      const r = heldRecordOf(this.changeLog.read(e));
      if (r) this.held.add(r.seq, r.offset, r.lengthBytes, this.heldCopies.has(r.seq));
    }
    this.heldCopies.dropBelow(this.changeLog.firstSeq ?? this.nextSeq);
  }

  static async open(o: TapDiskOptions): Promise<TapDisk> {
    const fd = openSync(o.path, 'r+');
    const st = fstatSync(fd);
    const sizeBytes = st.isFile() ? st.size : o.state.diskBytes;
    const dir = join(o.stateDir, o.disk);
    const changeLog = await FrameLog.open(join(dir, 'log'), 'log', o.log, { removeInBackground: true });
    const bitmap = DirtyBitmap.open(join(dir, 'dirty.bitmap'), sizeBytes);
    const heldCopies = HeldCopies.open(join(dir, 'held'), o.log);
    const flushedFd = openSync(join(dir, 'flushed-seq'), fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
    return new TapDisk(o, changeLog, bitmap, fd, sizeBytes, heldCopies, flushedFd);
  }

  get state(): TapState {
    return this.o.state;
  }

  /**
   * Log bytes not yet acknowledged: the uploader keeps the newest frame after its
   * acknowledgement (it tells a restarted agent its next seq), which must not count as load.
   */
  get logBytes(): number {
    const newest = this.changeLog.newest();
    const kept = newest && newest.lastSeq < this.state.ackedNextSeq ? newest.bytes : 0;
    return this.changeLog.bytes - kept + this.pending.used + this.logQueue.queuedBytes + this.held.size * HELD_CHARGE_BYTES + this.heldCopies.bytes;
  }

  /** Every record boundary is a crash-consistent state of the disk. */
  get consistent(): boolean {
    return this.state.initialSync.done && !this.state.bitmapMode;
  }

  /** Bytes the initial sync has covered so far. */
  get syncedBytes(): number {
    return this.state.initialSync.done ? this.sizeBytes : Math.min(this.sizeBytes, this.state.initialSync.cursorBlock * BLOCK);
  }

  /** Bytes of blocks waiting for a resync. */
  get dirtyBytes(): number {
    return this.bitmap.dirtyCount * BLOCK;
  }

  get phase(): TapPhase {
    if (!this.state.initialSync.done) return 'INITIAL_SYNC';
    return this.state.bitmapMode ? 'RESYNC' : 'CONTINUOUS';
  }

  // ---- recording -------------------------------------------------------------------------

  /** Appends records as one frame with the next seqs (after the pending ones); false when the log has no room. */
  private append(records: BatchRecord[], flags: number, force = false): boolean {
    this.commit();
    const frame = encodeFrame({
      machine: this.o.machine, disk: this.o.disk, firstSeq: this.nextSeq, timeMs: Date.now(), diskBytes: this.sizeBytes, flags, records, compress: false,
    });
    if (!force && this.logBytes + frame.length > this.o.maxLogBytes) return false;
    const h = readFrameHeader(frame);
    // Written at once when the log is idle, as the sync steps that append here always find it.
    void this.logQueue.append([frame], [{ firstSeq: h.firstSeq, lastSeq: h.lastSeq, timeMs: h.timeMs, flags: h.flags, bytes: frame.length }], false)?.catch(() => undefined);
    this.nextSeq += records.length;
    return true;
  }

  /**
   * Applies and records one change made by the consumer, in one synchronous step; a promise
   * when its record has to wait for log writes under way.
   */
  private recordChange(type: RecordType.WRITE | RecordType.ZERO | RecordType.TRIM, offset: number, length: number, data: Buffer | undefined, applyToDisk: () => void): void | Promise<void> {
    this.beforeChange(offset, length);
    applyToDisk();
    return this.afterChange(type, offset, length, data);
  }

  /**
   * Before a change reaches the disk: held writes whose bytes it changes are copied aside
   * first (fsynced when a flush covers them), and in bitmap mode its blocks are marked (durably).
   */
  private beforeChange(offset: number, length: number): void {
    if (this.held.size > 0) this.copyHeldUnder(offset, length);
    if (this.state.bitmapMode) this.bitmap.markRange(offset, length);
  }

  private copyHeldUnder(offset: number, length: number): void {
    const under = this.held.onDiskOverlapping(offset, length);
    if (under.length === 0) return;
    let durable = false;
    for (const w of under) {
      const data = Buffer.allocUnsafe(w.lengthBytes);
      this.readExact(data, w.offset);
      this.heldCopies.save(w.seq, w.offset, data, false);
      this.held.markCopied(w);
      if (w.seq < this.flushBeganNextSeq) durable = true;
    }
    if (durable) this.heldCopies.sync();
  }

  /**
   * Records one change made by the consumer, right after it reached the disk: its frame joins
   * the pending ones (written to the log by `commit`, once per burst of requests, before their
   * replies leave), or, when its payload is large, goes to the log on its own without copying.
   * Returns a promise that settles once the record is in the log when that is not done by the
   * time the server replies: for a large frame, and for any frame behind a log write under way.
   * Enters bitmap mode when the log is full.
   */
  private afterChange(type: RecordType.WRITE | RecordType.ZERO | RecordType.TRIM, offset: number, length: number, data: Buffer | undefined): void | Promise<void> {
    if (this.state.bitmapMode) {
      // Marked before the change began, unless the log filled up while it was on its way.
      this.bitmap.markRange(offset, length);
      return;
    }
    const held = type === RecordType.WRITE && length >= HELD_MIN_BYTES;
    const frameBytes = this.encoder.frameBytes(data && !held ? data.length : 0);
    if (this.logBytes + (held ? HELD_CHARGE_BYTES : frameBytes) > this.o.maxLogBytes) {
      this.o.log.warn('change log full: tracking changed blocks in the dirty bitmap; the disk will resync', { logBytes: this.logBytes, maxLogBytes: this.o.maxLogBytes });
      this.state.bitmapMode = true;
      this.bitmap.markRange(offset, length);
      return;
    }
    const flags = this.consistent ? FrameFlag.ORDERED : 0;
    const now = Date.now();
    if (frameBytes > PENDING_FRAME_MAX_BYTES) {
      this.commit();
      const f = this.encoder.encode(this.nextSeq, now, flags, type, offset, length, data);
      this.nextSeq++;
      // A failed log write has moved the disk to bitmap mode (logFailed): the change is tracked.
      return (this.logQueue.append([f.head, f.payload, f.checksum], [f], true) as Promise<void>).catch(() => undefined);
    }
    const p = this.pending;
    if (p.used + frameBytes > p.buf.length) this.commit();
    if (held) this.held.add(this.nextSeq, offset, length);
    const f = this.encoder.encode(this.nextSeq, now, flags, held ? RecordType.HELD : type, offset, length, held ? undefined : data, { buf: p.buf, at: p.used });
    p.used += f.bytes;
    p.frames.push({ firstSeq: f.firstSeq, lastSeq: f.lastSeq, timeMs: f.timeMs, flags: f.flags, bytes: f.bytes });
    p.ranges.push(offset, length);
    this.nextSeq++;
    if (this.logQueue.busy) {
      // Behind a log write under way: the reply waits until this record is written too.
      return Promise.resolve().then(() => {
        this.commit();
        return this.logQueue.drained();
      });
    }
    if (!this.commitQueued) {
      // A caller that is not the NBD server (which commits before replying) still gets its frames written.
      this.commitQueued = true;
      queueMicrotask(() => {
        this.commitQueued = false;
        this.commit();
      });
    }
  }

  /** A log write under way failed: neither it nor those queued behind it are in the log. */
  private logFailed(e: unknown, firstLostSeq: number): void {
    this.o.log.error('change log write failed: comparing the whole disk with the replica', { error: e as Error });
    this.pending.frames = [];
    this.pending.ranges = [];
    this.pending.used = 0;
    // Which writes those records held is not kept here: every block is compared instead.
    this.nextSeq = firstLostSeq;
    this.forgetHeldFrom(firstLostSeq);
    this.markAllDirty();
  }

  /**
   * Runs `step` once every change submitted before it is on the disk and recorded, and before
   * any change submitted after it: at once when none is on its way. The initial sync and
   * resync read and log blocks in such steps, so no write is half done under them.
   */
  inTurn<T>(step: () => T): T | Promise<T> {
    return this.writes.barrier(() => this.whenLogIdle(step)) as T | Promise<T>;
  }

  /** Runs `step` once no log write is under way (its appends are then written at once). */
  private whenLogIdle<T>(step: () => T): T | Promise<T> {
    const drained = this.logQueue.drained();
    return drained ? drained.then(() => this.whenLogIdle(step)) : step();
  }

  /**
   * Writes the pending frames to the log in one call. The NBD server calls it before replies
   * leave, so a reply always follows both the data and its record. Should the log write fail,
   * the writes (already on the disk) go to the dirty bitmap and the disk resyncs.
   */
  commit(): void {
    const p = this.pending;
    if (p.frames.length === 0) return;
    const frames = p.frames;
    const ranges = p.ranges;
    // Behind a log write under way the bytes wait in the queue: they leave the reused buffer.
    const bytes = this.logQueue.busy ? Buffer.from(p.buf.subarray(0, p.used)) : p.buf.subarray(0, p.used);
    p.frames = [];
    p.ranges = [];
    p.used = 0;
    try {
      void this.logQueue.append([bytes], frames, false)?.catch(() => undefined);
    } catch (e) {
      this.o.log.error('change log write failed: tracking the writes in the dirty bitmap; the disk will resync', { error: e as Error });
      this.nextSeq = frames[0].firstSeq;
      this.forgetHeldFrom(this.nextSeq);
      this.state.bitmapMode = true;
      for (let i = 0; i < ranges.length; i += 2) this.bitmap.markRange(ranges[i], ranges[i + 1]);
    }
  }

  // ---- NbdExport --------------------------------------------------------------------------

  read(offset: number, length: number): Buffer | Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const pending = this.readInto(offset, buf);
    return pending ? pending.then(() => buf) : buf;
  }

  /**
   * Reads straight into the server's reply buffer: synchronously up to 1 MiB (page-cache
   * reads are cheaper than a trip through the thread pool), through the pool beyond.
   */
  readInto(offset: number, target: Buffer): void | Promise<void> {
    if (target.length <= SYNC_READ_MAX_BYTES) {
      this.readExact(target, offset);
      return;
    }
    return readAsync(this.fd, target, 0, target.length, offset).then(({ bytesRead }) => {
      if (bytesRead < target.length) target.fill(0, bytesRead);
    });
  }

  private readExact(buf: Buffer, offset: number): void {
    let done = 0;
    while (done < buf.length) {
      const n = readSync(this.fd, buf, done, buf.length - done, offset + done);
      if (n === 0) {
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }

  private writeExact(data: Buffer, offset: number): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  private writeZerosToDisk(offset: number, length: number): void {
    for (let done = 0; done < length; ) {
      const n = Math.min(ZEROS.length, length - done);
      this.writeExact(ZEROS.subarray(0, n), offset + done);
      done += n;
    }
  }

  /**
   * A small write with nothing ahead of it is applied and recorded synchronously (the server
   * then replies in the same turn, with the other replies of its burst); a large one, or one
   * behind writes still on their way, settles once it is on the disk and in the log.
   */
  write(offset: number, data: Buffer, fua: boolean): void | Promise<void> {
    // `data` may be a view of the connection's buffer, which stays untouched until the call
    // settles; the record of a small write copies it.
    let done: void | Promise<void>;
    if (data.length >= POOL_WRITE_MIN_BYTES) {
      done = this.writes.write(() => this.beforeChange(offset, data.length), data, offset, () => this.afterChange(RecordType.WRITE, offset, data.length, data));
    } else {
      done = this.writes.run(offset, data.length, () => this.recordChange(RecordType.WRITE, offset, data.length, data, () => this.writeExact(data, offset)));
    }
    return fua ? this.flushAfter(done) : done;
  }

  /** Smaller writes come whole (their records carry their data), in buffers the server reuses. */
  readonly writePartsMinBytes = Math.max(HELD_MIN_BYTES, POOL_WRITE_MIN_BYTES);

  /**
   * A write whose payload arrived in pieces: a held one goes to the file as those pieces
   * (writev, no copy: its record carries no data); a smaller one is joined first, for its record.
   */
  writeParts(offset: number, parts: Buffer[], lengthBytes: number, fua: boolean): void | Promise<void> {
    if (lengthBytes < this.writePartsMinBytes) return this.write(offset, Buffer.concat(parts, lengthBytes), fua);
    const done = this.writes.writeParts(() => this.beforeChange(offset, lengthBytes), parts, lengthBytes, offset, () => this.afterChange(RecordType.WRITE, offset, lengthBytes, undefined));
    return fua ? this.flushAfter(done) : done;
  }

  writeZeroes(offset: number, length: number, fua: boolean): void | Promise<void> {
    const done = this.writes.run(offset, length, () => this.recordChange(RecordType.ZERO, offset, length, undefined, () => this.writeZerosToDisk(offset, length)));
    return fua ? this.flushAfter(done) : done;
  }

  trim(offset: number, length: number, fua: boolean): void | Promise<void> {
    // The replica applies a trim as zeros; the source must read the same.
    const done = this.writes.run(offset, length, () => this.recordChange(RecordType.TRIM, offset, length, undefined, () => this.writeZerosToDisk(offset, length)));
    return fua ? this.flushAfter(done) : done;
  }

  private flushAfter(done: void | Promise<void>): Promise<void> {
    return done ? done.then(() => this.flush()) : this.flush();
  }

  /** Makes every change submitted so far durable: its record first, then the disk. */
  async flush(): Promise<void> {
    let upTo = 0;
    await this.writes.barrier(() => {
      upTo = this.nextSeq;
      // From here on a held write below upTo that the consumer overwrites has its copy fsynced.
      if (upTo > this.flushBeganNextSeq) this.flushBeganNextSeq = upTo;
      this.commit();
      return this.logQueue.drained();
    });
    await this.changeLog.sync();
    this.heldCopies.sync();
    await fdatasyncAsync(this.fd);
    if (upTo > this.flushedNextSeq) {
      this.flushedNextSeq = upTo;
      writeFlushedNextSeq(this.flushedFd, upTo);
    }
  }

  // ---- initial sync and resync ----------------------------------------------------------

  /** Sync and resync steps use at most half the log, leaving room for live writes; an empty log always takes one step. */
  private hasRoomFor(blocks: number): boolean {
    const used = this.logBytes;
    return used === 0 || used + blocks * (BLOCK + 128) <= this.o.maxLogBytes / 2;
  }

  /**
   * One synchronous step of the initial sync: reads the next blocks and logs those that are
   * not zero (or all, with sendZeros). Returns false when the log has no room for them yet.
   */
  initialSyncStep(): boolean {
    const s = this.state.initialSync;
    const blocks = Math.ceil(this.sizeBytes / BLOCK);
    if (s.done) return true;
    const first = s.cursorBlock;
    const count = Math.min(SYNC_STEP_BLOCKS, blocks - first);
    if (!this.hasRoomFor(count)) return false;
    const records: BatchRecord[] = [];
    for (let b = first; b < first + count; b++) {
      const len = Math.min(BLOCK, this.sizeBytes - b * BLOCK);
      const data = Buffer.allocUnsafe(len);
      this.readExact(data, b * BLOCK);
      const zero = data.equals(len === BLOCK ? this.zeroBlock : this.zeroBlock.subarray(0, len));
      if (zero && !s.sendZeros) continue;
      records.push(zero ? { type: RecordType.ZERO, offset: b * BLOCK, lengthBytes: len } : { type: RecordType.WRITE, offset: b * BLOCK, data });
    }
    if (records.length) this.append(records, FrameFlag.INITIAL_SYNC, true);
    s.cursorBlock = first + count;
    if (s.cursorBlock >= blocks && !this.state.bitmapMode) this.finishConsistency('initial sync');
    else if (s.cursorBlock >= blocks) s.done = true;
    return true;
  }

  /**
   * One synchronous round of a resync over the given dirty blocks: a block whose replica hash
   * is known (`replicaHashes`, valid for the replica's state since no record touched the block)
   * is compared and left alone when equal; any other block is sent, and its hash forgotten.
   * The blocks' bits are cleared once their records are durable. The caller checks the room
   * (`hasRoomForBlocks`).
   */
  resyncRound(blocks: readonly number[], replicaHashes: Map<number, Buffer>): void {
    const records: BatchRecord[] = [];
    const stats = this.resyncStats;
    let sent = 0;
    for (const b of blocks) {
      const len = Math.min(BLOCK, this.sizeBytes - b * BLOCK);
      const data = Buffer.allocUnsafe(len);
      this.readExact(data, b * BLOCK);
      stats.comparedBlocks++;
      const theirs = replicaHashes.get(b);
      if (theirs && blockHash(data).equals(theirs)) {
        stats.equalBlocks++;
        continue;
      }
      replicaHashes.delete(b);
      const zero = data.equals(len === BLOCK ? this.zeroBlock : this.zeroBlock.subarray(0, len));
      records.push(zero ? { type: RecordType.ZERO, offset: b * BLOCK, lengthBytes: len } : { type: RecordType.WRITE, offset: b * BLOCK, data });
      stats.sentBlocks++;
      sent++;
      stats.sentBytes += zero ? 0 : len;
      if (records.length === SYNC_STEP_BLOCKS * 4) {
        this.append(records.splice(0), FrameFlag.RESYNC, true);
      }
    }
    if (records.length) this.append(records, FrameFlag.RESYNC, true);
    // The records must be durable before their bits go.
    if (sent) this.changeLog.syncDataSync();
    this.bitmap.clear(blocks);
  }

  /** Ends a resync (call in the same synchronous step as the round that left no dirty block): the log takes over again. */
  finishResync(): void {
    this.state.bitmapMode = false;
    if (this.state.initialSync.cursorBlock >= Math.ceil(this.sizeBytes / BLOCK)) this.finishConsistency('resync');
  }

  /** Whether a resync round of `blocks` fits in the log now. */
  hasRoomForBlocks(blocks: number): boolean {
    return this.hasRoomFor(blocks);
  }

  /** Tags a named bookmark at the current write boundary; returns its seq. */
  bookmark(name: string): number {
    return this.tag('bookmark', name);
  }

  /** Tags the current write boundary as a point of `kind`; returns its seq. */
  tag(kind: PointKind, name?: string): number {
    if (!this.consistent) {
      throw new TapStateError(`${this.o.disk} is in ${this.phase}: its write boundaries are not consistent points yet`);
    }
    this.append([{ type: RecordType.TAG, tag: { kind, timeMs: Date.now(), ...(name ? { name } : {}) } }], FrameFlag.ORDERED, true);
    return this.nextSeq - 1;
  }

  /** Tags the first consistent point after a full pass. */
  private finishConsistency(what: string): void {
    this.state.initialSync.done = true;
    this.append([{ type: RecordType.TAG, tag: { kind: 'crash', timeMs: Date.now(), name: `${what} complete` } }], 0, true);
    this.o.log.info(`${what} complete: every write from here on is a recovery point`, { disk: this.o.disk, seq: this.nextSeq - 1 });
  }

  // ---- held writes -----------------------------------------------------------------------

  private forgetHeldFrom(seq: number): void {
    this.held.dropFrom(seq);
    this.heldCopies.dropFrom(seq);
  }

  /** Forgets held writes (and their copies) below `seq`: the process server holds them. */
  dropHeldBelow(seq: number): void {
    this.held.dropBelow(seq);
    this.heldCopies.dropBelow(seq);
  }

  /** Bytes `entry` takes in a batch: a held write counts with its data. */
  batchBytesOf(entry: LogEntry): number {
    const w = entry.firstSeq === entry.lastSeq ? this.held.get(entry.firstSeq) : undefined;
    return w ? entry.bytes + w.lengthBytes : entry.bytes;
  }

  /**
   * The frames read back from the log as they are shipped, checked and split into records: a
   * held write's frame becomes the WRITE frame it stands for (the same records an unheld write
   * would have had), its data read from the disk, or from its copy when the consumer changed
   * those bytes since. A copy is always made before such a change starts, so data read from the
   * disk is good if the write is still not copied once the read is done.
   */
  async resolveHeld(entries: readonly LogEntry[], frames: Buffer[]): Promise<DecodedFrame[]> {
    const out: DecodedFrame[] = new Array(frames.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const w = this.held.size > 0 && e.firstSeq === e.lastSeq ? this.held.get(e.firstSeq) : undefined;
      if (!w) {
        if (heldRecordOf(frames[i])) throw new Error(`the log's held write at seq ${e.firstSeq} is not known to the agent`);
        out[i] = decodeFrame(frames[i]);
        continue;
      }
      const data = Buffer.allocUnsafe(w.lengthBytes);
      if (!w.copied) await this.readFull(data, w.offset);
      if (w.copied && !this.heldCopies.readInto(w.seq, data, 0)) throw new Error(`the copy of held write ${w.seq} is missing`);
      const header = readFrameHeader(frames[i]);
      out[i] = { header, records: [{ type: RecordType.WRITE, seq: w.seq, offset: w.offset, lengthBytes: w.lengthBytes, compressed: false, payload: data }] };
    }
    return out;
  }

  private async readFull(buf: Buffer, offset: number): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await readAsync(this.fd, buf, done, buf.length - done, offset + done);
      if (bytesRead === 0) {
        buf.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  /**
   * After a host crash: a held write that no finished flush covered may have lost its data
   * (the record can be on disk while the data is not), so the log is cut before the first
   * such write that was neither acknowledged nor copied; what followed it is left to the
   * whole-disk comparison the caller starts.
   */
  distrustUnflushedHeld(): void {
    const floor = Math.max(this.flushedNextSeq, this.state.ackedNextSeq);
    let cut: number | undefined;
    for (const e of this.changeLog.pending()) {
      if (e.firstSeq < floor) continue;
      const w = this.held.get(e.firstSeq);
      if (w && !w.copied) {
        cut = e.firstSeq;
        break;
      }
    }
    if (cut === undefined) return;
    this.o.log.warn('host crash: cutting the change log before a large write that was never flushed', { disk: this.o.disk, seq: cut });
    this.changeLog.cutFrom(cut);
    this.forgetHeldFrom(cut);
    this.nextSeq = Math.max(cut, this.state.ackedNextSeq);
  }

  /**
   * Forgets the log and starts the stream over at `seq`, every block to be sent again: the
   * replica's history is not what this agent recorded (downstream lost data, or this state
   * is newer than the stream).
   */
  restartStreamAt(seq: number): void {
    this.commit();
    this.logQueue.discard();
    this.changeLog.dropThrough(Number.MAX_SAFE_INTEGER);
    this.held.clear();
    this.heldCopies.clear();
    this.nextSeq = seq;
    this.streamRestarts++;
    if (!this.state.initialSync.done) {
      this.state.initialSync = { done: false, cursorBlock: 0, sendZeros: true };
    } else {
      this.bitmap.markAll();
      this.state.bitmapMode = true;
    }
  }

  /** After a host crash, unflushed writes may be on the disk but not in the log: compare everything. */
  markAllDirty(): void {
    this.bitmap.markAll();
    this.state.bitmapMode = true;
  }

  close(): void {
    this.commit();
    this.changeLog.close();
    this.heldCopies.close();
    closeSync(this.flushedFd);
    this.bitmap.close();
    closeSync(this.fd);
  }
}

/** The seq below which a finished flush covered every write, as `flushed-seq` keeps it (0 if unknown). */
function readFlushedNextSeq(fd: number): number {
  const b = Buffer.alloc(16);
  if (readSync(fd, b, 0, 16, 0) !== 16) return 0;
  if (!xxh64Of(b.subarray(0, 8)).equals(b.subarray(8))) return 0;
  return b.readUInt32BE(0) * 0x1_0000_0000 + b.readUInt32BE(4);
}

/**
 * Written after the flush finished and without an fsync of its own: whatever value reaches the
 * disk was true when written, and a lost one only makes a host-crash recovery cut earlier.
 */
function writeFlushedNextSeq(fd: number, seq: number): void {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 0);
  b.writeUInt32BE(seq >>> 0, 4);
  xxh64Of(b.subarray(0, 8)).copy(b, 8);
  writeSync(fd, b, 0, 16, 0);
}
