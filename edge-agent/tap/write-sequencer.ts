/**
 * Puts a tap disk's changes on the backing file in an order the change log can follow, with
 * large writes done by the thread pool so that the event loop goes on receiving and logging
 * meanwhile.
 *
 * A step covers a byte range and has a synchronous `end`; a pool step also has a synchronous
 * `begin` and data written between the two. Steps start in the order they were submitted, and
 * a step does not start while an earlier one whose range overlaps it is still under way; pool
 * steps whose ranges are disjoint run side by side, up to `maxPoolWrites`. `end` runs in the
 * turn the step's write completed (at once for a step without one), so for every two steps
 * that touch the same byte the order of their `end` calls is the order the disk saw them, and
 * steps with disjoint ranges commute: recording each change in its `end` gives a log whose
 * every prefix is a state the disk was in. A step that can start when it is submitted and has
 * no pool write runs in the caller's turn and costs no promise (the hot path of small requests).
 */
import { write as writeCb, writev as writevCb } from 'node:fs';
import { partsFrom } from '../../core/buffer-parts.ts';

/** Pool writes under way at once: the thread pool has four threads, shared with other file calls. */
export const MAX_POOL_WRITES = 4;

interface Step {
  offset: number;
  /** End of the byte range; Infinity for a barrier. */
  endOffset: number;
  begin: (() => void) | undefined;
  /** What a pool step writes: one buffer, or pieces written with one writev. */
  data: Buffer | Buffer[] | undefined;
  end: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class WriteSequencer {
  /** Steps not started yet, oldest first. */
  private waiting: Step[] = [];
  /** Pool steps whose write is under way. */
  private readonly writing: Step[] = [];

  constructor(private readonly fd: number, private readonly maxPoolWrites = MAX_POOL_WRITES) {}

  /** True while a step waits or runs. */
  get busy(): boolean {
    return this.waiting.length > 0 || this.writing.length > 0;
  }

  /**
   * Runs `step`, which changes `length` bytes at `offset` synchronously, in its turn: at once
   * (returning its value) when it can start now, else once it can (resolving with its value).
   */
  run<T>(offset: number, length: number, step: () => T): T | Promise<Awaited<T>> {
    if (this.waiting.length === 0 && !this.overlapsWriting(offset, offset + length)) return step();
    return this.enqueue(offset, offset + length, undefined, undefined, step) as Promise<Awaited<T>>;
  }

  /**
   * Runs `step` once every step submitted before it has ended, and before any step submitted
   * after it starts: at once when nothing is under way. A step that returns a promise keeps
   * its turn until the promise settles.
   */
  barrier<T>(step: () => T): T | Promise<Awaited<T>> {
    if (!this.busy) {
      const value = step();
      if (value instanceof Promise) this.hold(value);
      return value;
    }
    return this.enqueue(0, Infinity, undefined, undefined, step) as Promise<Awaited<T>>;
  }

  /**
   * In its turn: `begin()`, then `data` written at `offset` by the thread pool, then `end()` in
   * the turn the write completed. Resolves after `end`; rejects if any of them failed (a failed
   * write skips `end`).
   */
  write(begin: () => void, data: Buffer, offset: number, end: () => void): Promise<void> {
    return this.enqueue(offset, offset + data.length, begin, data, end) as Promise<void>;
  }

  /** `write` of the pieces `parts` (`lengthBytes` in all), written as they are with writev. */
  writeParts(begin: () => void, parts: Buffer[], lengthBytes: number, offset: number, end: () => void): Promise<void> {
    return this.enqueue(offset, offset + lengthBytes, begin, parts, end) as Promise<void>;
  }

  private enqueue(offset: number, endOffset: number, begin: (() => void) | undefined, data: Buffer | Buffer[] | undefined, end: () => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ offset, endOffset, begin, data, end, resolve, reject });
      this.pump();
    });
  }

  private overlapsWriting(offset: number, endOffset: number): boolean {
    for (const w of this.writing) if (w.offset < endOffset && offset < w.endOffset) return true;
    return false;
  }

  /** Starts waiting steps, oldest first, until one has to wait. */
  private pump(): void {
    while (this.waiting.length > 0) {
      const s = this.waiting[0];
      if (this.overlapsWriting(s.offset, s.endOffset)) return;
      if (s.data && this.writing.length >= this.maxPoolWrites) return;
      this.waiting.shift();
      if (!s.data) {
        this.runStep(s);
        continue;
      }
      try {
        s.begin?.();
      } catch (e) {
        s.reject(e);
        continue;
      }
      this.writing.push(s);
      this.writeFrom(s, 0);
    }
  }

  /**
   * Runs a step without a pool write. A barrier whose `end` returns a promise keeps its turn
   * (nothing else starts) until that promise settles.
   */
  private runStep(s: Step): void {
    let value: unknown;
    try {
      value = s.end();
    } catch (e) {
      s.reject(e);
      return;
    }
    if (s.endOffset === Infinity && value instanceof Promise) this.hold(value);
    s.resolve(value);
  }

  /** Nothing starts until `pending` settles (a barrier keeping its turn). */
  private hold(pending: Promise<unknown>): void {
    const holder = { offset: 0, endOffset: Infinity } as Step;
    this.writing.push(holder);
    const done = () => {
      this.writing.splice(this.writing.indexOf(holder), 1);
      this.pump();
    };
    pending.then(done, done);
  }

  private writeFrom(s: Step, done: number): void {
    const data = s.data!;
    const total = s.endOffset - s.offset;
    const completed = (err: Error | null, n: number) => {
      if (!err && n > 0 && done + n < total) {
        this.writeFrom(s, done + n);
        return;
      }
      this.writing.splice(this.writing.indexOf(s), 1);
      if (err || n <= 0) s.reject(err ?? new Error(`write at byte ${s.offset + done} wrote nothing`));
      else {
        try {
          s.resolve(s.end());
        } catch (e) {
          s.reject(e);
        }
      }
      this.pump();
    };
    try {
      if (Array.isArray(data)) writevCb(this.fd, done ? partsFrom(data, done) : data, s.offset + done, completed);
      else writeCb(this.fd, data, done, data.length - done, s.offset + done, completed);
    } catch (e) {
      // Arguments the call refuses at once (a closed descriptor): fail this step only.
      queueMicrotask(() => completed(e as Error, 0));
    }
  }
}
