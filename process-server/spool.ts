/**
 * The durable spool of one stream: frames exactly as the agent sent them, fsynced before the
 * agent is answered, leaving only after the master target acknowledged them. Layout and
 * recovery rules: docs/spool-format.md; the log itself is core's FrameLog. While memory
 * allows, a copy of each pending frame is also kept (arrived-frames.ts) for shipping.
 */
import { FrameLog, type LogEntry } from '../core/frame-log.ts';
import type { FrameHeader } from '../core/wire/frame.ts';
import type { Logger } from '../core/log.ts';
import { ArrivedFrames } from './arrived-frames.ts';
import { arrivedFrameBudget, frameBuffers } from './frame-buffers.ts';

export type SpoolEntry = LogEntry;

export class StreamSpool {
  /** Copies of pending frames as they arrived, verified: shipped without reading them back. */
  private readonly arrived = new ArrivedFrames(frameBuffers, arrivedFrameBudget);

  private constructor(private readonly log: FrameLog) {}

  /** Opens (or creates) a stream's spool, checking every frame and cutting a torn tail. */
  static async open(dir: string, log: Logger): Promise<StreamSpool> {
    return new StreamSpool(await FrameLog.open(dir, 'spool', log, { removeInBackground: true }));
  }

  /** Seq after the newest spooled frame, or undefined when the spool is empty. */
  get nextSeq(): number | undefined {
    return this.log.nextSeq;
  }

  /** Bytes of frames not yet acknowledged downstream. */
  get bytes(): number {
    return this.log.bytes;
  }

  /** Pending entries, oldest first (a copy). */
  pending(): readonly SpoolEntry[] {
    return this.log.pending();
  }

  get pendingCount(): number {
    return this.log.pendingCount;
  }

  /** Pending entries holding seqs at or after `seq`, oldest first. */
  from(seq: number): Generator<SpoolEntry> {
    return this.log.from(seq);
  }

  /**
   * Appends a verified frame and makes it durable before returning; the write and the sync
   * run on the thread pool, so other streams' batches go on meanwhile. One append at a time.
   */
  async append(frame: Buffer, header: FrameHeader): Promise<void> {
    await this.log.appendDurable(frame, header);
    this.arrived.keep(header.firstSeq, header.lastSeq, frame);
  }

  /**
   * The pending frames of `entries` as they arrived (verified then, so not checked again),
   * or undefined unless every one is still kept in memory: then read them back.
   */
  arrivedFrames(entries: readonly SpoolEntry[]): Buffer[] | undefined {
    return this.arrived.get(entries.map((e) => e.firstSeq));
  }

  /** Reads one pending frame back. */
  async read(entry: SpoolEntry): Promise<Buffer> {
    return this.log.read(entry);
  }

  /** Reads pending frames back into `buf` (at least their total length); a view of it per frame. */
  async readInto(entries: readonly SpoolEntry[], buf: Buffer): Promise<Buffer[]> {
    return this.log.readInto(entries, buf);
  }

  /** Forgets every frame whose last seq is at or below `seq`; deletes segments left empty (on the thread pool). */
  async dropThrough(seq: number): Promise<void> {
    this.arrived.dropThrough(seq);
    this.log.dropThrough(seq);
    await this.log.removalsDone();
  }

  async close(): Promise<void> {
    this.arrived.clear();
    this.log.close();
  }
}
