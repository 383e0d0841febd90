/**
 * Ships a tap disk's change log to the process server: consecutive log frames of the same
 * kind are merged into batches of up to 4 MiB, sent in order, and dropped from the log once
 * acknowledged. Records go as the log holds them (uncompressed: compression is the process
 * server's work), or LZ4 where it pays when the agent is told to compress.
 */
import { encodeFrame, recordData, recordTag, FrameFlag, RecordType, type BatchRecord, type DecodedFrame } from '../../core/wire/frame.ts';
import { mergeDecoded } from '../../core/wire/merge.ts';
import type { Logger } from '../../core/log.ts';
import type { LogEntry } from '../../core/frame-log.ts';
import { Wakeable } from '../../core/wakeable.ts';
import { Uploader, SeqConflictError } from '../uploader.ts';
import type { TapDisk } from './tap-disk.ts';

export const UPLOAD_BATCH_BYTES = 4 * 1024 * 1024;
const KIND_MASK = FrameFlag.INITIAL_SYNC | FrameFlag.RESYNC | FrameFlag.ORDERED;

export interface LogUploaderOptions {
  disk: TapDisk;
  uploader: Uploader;
  log: Logger;
  signal: AbortSignal;
  /** LZ4 records where it pays before sending. */
  compress?: boolean;
  /** Called with the process server's position after each acknowledgement. */
  onAck: (nextSeq: number) => Promise<void>;
}

export class LogUploader {
  private readonly waker = new Wakeable();
  /** First seq the process server does not hold (undefined until asked). */
  serverNextSeq: number | undefined;

  constructor(private readonly o: LogUploaderOptions) {}

  wake(): void {
    this.waker.wake();
  }

  /** Learns the process server's position and reconciles the log with it. */
  async connect(): Promise<void> {
    const ps = await this.o.uploader.position();
    const d = this.o.disk;
    const logFirst = d.changeLog.firstSeq;
    if (ps > d.nextSeq) {
      this.o.log.error('the process server holds sequence numbers this agent never recorded (its state is older than the stream); comparing the whole disk with the replica', { serverNextSeq: ps, nextSeq: d.nextSeq });
      d.restartStreamAt(ps);
    } else if (logFirst !== undefined ? ps < logFirst : ps < d.nextSeq) {
      this.o.log.error('the process server has lost acknowledged data; comparing the whole disk with the replica', { serverNextSeq: ps, logFirstSeq: logFirst, nextSeq: d.nextSeq });
      d.restartStreamAt(ps);
    } else {
      this.dropAcknowledged(ps);
    }
    this.serverNextSeq = ps;
    await this.o.onAck(ps);
  }

  async run(): Promise<void> {
    while (!this.o.signal.aborted) {
      try {
        if (this.serverNextSeq === undefined) await this.connect();
        const sent = await this.sendOne();
        if (!sent) await this.waker.sleep(1000);
      } catch (e) {
        if (this.o.signal.aborted) return;
        if (e instanceof SeqConflictError) {
          this.o.log.warn('stream position moved; re-reading it', { nextSeq: e.nextSeq });
          this.serverNextSeq = undefined;
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * Drops acknowledged frames, except the newest one: the log's tail is how a restarted agent
   * knows its next sequence number, even if the saved position is older.
   */
  private dropAcknowledged(nextSeq: number): void {
    const newest = this.o.disk.changeLog.newest();
    this.o.disk.changeLog.dropThrough(Math.min(nextSeq - 1, newest ? newest.firstSeq - 1 : nextSeq - 1));
    this.o.disk.dropHeldBelow(nextSeq);
  }

  /** Sends the next batch; false when there is nothing to send. */
  private async sendOne(): Promise<boolean> {
    const d = this.o.disk;
    const from = this.serverNextSeq!;
    const batch: LogEntry[] = [];
    let rawBytes = 0;
    for (const e of d.changeLog.from(from)) {
      const bytes = d.batchBytesOf(e);
      if (batch.length > 0 && ((e.flags & KIND_MASK) !== (batch[0].flags & KIND_MASK) || rawBytes + bytes > UPLOAD_BATCH_BYTES)) break;
      batch.push(e);
      rawBytes += bytes;
    }
    if (batch.length === 0) return false;
    const frames = await d.resolveHeld(batch, d.changeLog.readMany(batch));
    const frame = this.o.compress ? this.compressed(frames, from) : mergeDecoded(frames, from);
    const next = await this.o.uploader.send(frame, from);
    this.serverNextSeq = next;
    this.dropAcknowledged(next);
    await this.o.onAck(next);
    return true;
  }

  /** The log frames from seq `from` on as one frame, records LZ4-compressed where it pays. */
  private compressed(frames: readonly DecodedFrame[], from: number): Buffer {
    const d = this.o.disk;
    const records: BatchRecord[] = [];
    let header: DecodedFrame['header'] | undefined;
    for (const decoded of frames) {
      header = decoded.header;
      for (const r of decoded.records) {
        if (r.seq < from) continue;
        if (r.type === RecordType.WRITE) records.push({ type: r.type, offset: r.offset, data: recordData(r) });
        else if (r.type === RecordType.TAG) records.push({ type: r.type, tag: recordTag(r) });
        else records.push({ type: r.type as RecordType.ZERO | RecordType.TRIM, offset: r.offset, lengthBytes: r.lengthBytes });
      }
    }
    return encodeFrame({ machine: d.o.machine, disk: d.o.disk, firstSeq: from, timeMs: header!.timeMs, diskBytes: d.sizeBytes, flags: header!.flags & KIND_MASK, records });
  }
}

