/**
 * Appends to a tap disk's change log in order. A large append (a write's frame with its
 * request's own data) goes to the thread pool, so that the event loop goes on receiving
 * requests while the kernel copies it; whatever is appended while one is under way waits
 * behind it and leaves with the next batch, in one writev. An append with nothing ahead of it
 * that is not large is written synchronously, in the caller's turn.
 *
 * Frames are in the log (visible to the uploader, and safe from a killed process) only once
 * their append settled; a reply must wait for that.
 */
import type { FrameLog } from '../../core/frame-log.ts';
import type { FrameMeta } from '../../core/wire/record-frame.ts';

/** Most bytes and frames one batch of queued appends writes. */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
const MAX_BATCH_FRAMES = 256;

interface Item {
  parts: Buffer[];
  frames: readonly FrameMeta[];
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface LogQueueOptions {
  /** Called after frames reached the log. */
  onWritten: () => void;
  /**
   * Called, in the turn a pool append failed, with the error and the first seq not written:
   * that append and every one queued behind it are not in the log (their promises reject next).
   */
  onFailed: (err: unknown, firstLostSeq: number) => void;
}

export class LogQueue {
  private queue: Item[] = [];
  private writing = false;
  /** Settles after the newest queued append. */
  private last: Promise<void> | undefined;
  private queued = 0;
  /** The batch under way belongs to a stream given up: drop its frames once written. */
  private dropWhenWritten = false;

  constructor(private readonly log: FrameLog, private readonly o: LogQueueOptions) {}

  /** True while an append is queued or under way. */
  get busy(): boolean {
    return this.writing || this.queue.length > 0;
  }

  /** Bytes queued or under way, not yet counted by the log. */
  get queuedBytes(): number {
    return this.queued;
  }

  /**
   * Appends `parts` (holding `frames` back to back): synchronously when nothing is ahead and
   * `large` is false (a failure throws), else once the appends ahead of it are written. The
   * parts must stay untouched until then.
   */
  append(parts: Buffer[], frames: readonly FrameMeta[], large: boolean): void | Promise<void> {
    if (!this.busy && !large) {
      this.log.appendPartsSync(parts, frames);
      this.o.onWritten();
      return;
    }
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    const written = new Promise<void>((resolve, reject) => this.queue.push({ parts, frames, bytes, resolve, reject }));
    this.queued += bytes;
    this.last = written.then(
      () => undefined,
      () => undefined,
    );
    if (!this.writing) this.start();
    return written;
  }

  /** Settles once every append made so far has settled; undefined when none is under way. */
  drained(): Promise<void> | undefined {
    return this.busy ? this.last : undefined;
  }

  /**
   * Gives up what is queued (those appends resolve without being written) and drops the frames
   * of the batch under way once it is written: the stream starts over.
   */
  discard(): void {
    const dropped = this.queue;
    this.queue = [];
    for (const it of dropped) {
      this.queued -= it.bytes;
      it.resolve();
    }
    if (this.writing) this.dropWhenWritten = true;
  }

  private start(): void {
    const batch: Item[] = [];
    const parts: Buffer[] = [];
    const frames: FrameMeta[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && batch.length < MAX_BATCH_FRAMES && (batch.length === 0 || bytes + this.queue[0].bytes <= MAX_BATCH_BYTES)) {
      const it = this.queue.shift()!;
      batch.push(it);
      for (const p of it.parts) parts.push(p);
      for (const f of it.frames) frames.push(f);
      bytes += it.bytes;
    }
    this.writing = true;
    let written: Promise<void>;
    try {
      written = this.log.appendPartsAsync(parts, frames);
    } catch (e) {
      written = Promise.reject(e);
    }
    written.then(
      () => {
        this.writing = false;
        this.queued -= bytes;
        if (this.dropWhenWritten) {
          this.dropWhenWritten = false;
          this.log.dropThrough(Number.MAX_SAFE_INTEGER);
        } else this.o.onWritten();
        for (const it of batch) it.resolve();
        if (this.queue.length > 0) this.start();
      },
      (err) => {
        this.writing = false;
        this.dropWhenWritten = false;
        const failed = batch.concat(this.queue);
        this.queue = [];
        this.queued = 0;
        this.o.onFailed(err, frames[0].firstSeq);
        for (const it of failed) it.reject(err);
      },
    );
  }
}
