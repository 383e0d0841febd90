/**
 * The durable spool of one stream: frames exactly as the agent sent them, fsynced before the
 * agent is answered, leaving only after the master target acknowledged them. Layout and
 * recovery rules: docs/spool-format.md; the log itself is core's FrameLog.
 */
import { FrameLog, type LogEntry } from '../core/frame-log.ts';
import type { FrameHeader } from '../core/wire/frame.ts';
import type { Logger } from '../core/log.ts';

export type SpoolEntry = LogEntry;

export class StreamSpool {
  private constructor(private readonly log: FrameLog) {}

  /** Opens (or creates) a stream's spool, checking every frame and cutting a torn tail. */
  static async open(dir: string, log: Logger): Promise<StreamSpool> {
    return new StreamSpool(await FrameLog.open(dir, 'spool', log));
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

  /** Appends a verified frame and makes it durable before returning. */
  async append(frame: Buffer, header: FrameHeader): Promise<void> {
    this.log.appendSync(frame, header);
    await this.log.sync();
  }

  /** Reads one pending frame back. */
  async read(entry: SpoolEntry): Promise<Buffer> {
    return this.log.read(entry);
  }

  /** Forgets every frame whose last seq is at or below `seq`; deletes segments left empty. */
  async dropThrough(seq: number): Promise<void> {
    this.log.dropThrough(seq);
  }

  async close(): Promise<void> {
    this.log.close();
  }
}
