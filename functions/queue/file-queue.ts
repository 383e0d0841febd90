/**
 * The embedded queue: durable on disk, one file per message under `<root>/queues/<name>/`,
 * each rewritten atomically (write-then-rename, fsync) whenever its delivery state changes.
 * Visibility timeout, long poll (woken by `send` in the same process) and a dead-letter queue
 * `<name>-dlq` after `maxReceiveCount` receives. One process owns a directory at a time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyLock } from '../store/key-lock.ts';
import { removeFileDurably, writeFileDurably } from '../store/durable-file.ts';
import {
  checkQueueName,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
  MAX_MESSAGE_BYTES,
  MAX_WAIT_SECONDS,
  type MessageQueue,
  type QueueProvider,
  type ReceivedMessage,
  type ReceiveOptions,
} from './message-queue.ts';

/** The on-disk record of one message (format version 1, docs/control-plane-store.md). */
interface MessageRecord {
  v: 1;
  id: string;
  seq: number;
  body: string;
  sentAtMs: number;
  receiveCount: number;
  invisibleUntilMs: number;
  receipt: string | null;
}

export interface FileQueueOptions {
  /** Receives after which a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** @default 30 */
  readonly visibilityTimeoutSeconds?: number;
}

export class FileQueueProvider implements QueueProvider {
  readonly #root: string;
  readonly #tmp: string;
  readonly #options: FileQueueOptions;
  readonly #queues = new Map<string, Promise<FileQueue>>();

  private constructor(root: string, options: FileQueueOptions) {
    this.#root = join(root, 'queues');
    this.#tmp = join(root, 'tmp');
    this.#options = options;
  }

  /** Opens (creating if needed) the queues kept under `root`. */
  static async open(root: string, options: FileQueueOptions = {}): Promise<FileQueueProvider> {
    const p = new FileQueueProvider(root, options);
    await mkdir(p.#root, { recursive: true, mode: 0o700 });
    await mkdir(p.#tmp, { recursive: true, mode: 0o700 });
    return p;
  }

  async open(name: string): Promise<MessageQueue> {
    return this.#queue(checkQueueName(name), false);
  }

  async deadLetters(name: string): Promise<MessageQueue> {
    return this.#queue(`${checkQueueName(name)}-dlq`, true);
  }

  #queue(name: string, isDeadLetter: boolean): Promise<FileQueue> {
    let q = this.#queues.get(name);
    if (!q) {
      const deadLetter = isDeadLetter ? undefined : () => this.#queue(`${name}-dlq`, true);
      q = FileQueue.load(name, join(this.#root, name), this.#tmp, this.#options, deadLetter);
      this.#queues.set(name, q);
      q.catch(() => this.#queues.delete(name));
    }
    return q;
  }
}

class FileQueue implements MessageQueue {
  readonly name: string;
  readonly #dir: string;
  readonly #tmp: string;
  readonly #maxReceiveCount: number;
  readonly #visibilityMs: number;
  readonly #deadLetter?: () => Promise<FileQueue>;
  readonly #messages = new Map<number, MessageRecord>();
  readonly #lock = new KeyLock();
  readonly #waiters = new Set<() => void>();
  #nextSeq = 1;

  private constructor(name: string, dir: string, tmp: string, options: FileQueueOptions, deadLetter?: () => Promise<FileQueue>) {
    this.name = name;
    this.#dir = dir;
    this.#tmp = tmp;
    this.#maxReceiveCount = options.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    this.#visibilityMs = (options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS) * 1000;
    this.#deadLetter = deadLetter;
  }

  static async load(name: string, dir: string, tmp: string, options: FileQueueOptions, deadLetter?: () => Promise<FileQueue>): Promise<FileQueue> {
    const q = new FileQueue(name, dir, tmp, options, deadLetter);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const file of await readdir(dir)) {
      if (!file.endsWith('.json')) continue;
      const rec = JSON.parse(await readFile(join(dir, file), 'utf8')) as MessageRecord;
      if (rec.v !== 1) throw new Error(`queue ${name}: message file ${file} has unknown format version ${rec.v}`);
      q.#messages.set(rec.seq, rec);
      q.#nextSeq = Math.max(q.#nextSeq, rec.seq + 1);
    }
    return q;
  }

  #path(seq: number): string {
    return join(this.#dir, `${seq.toString(16).padStart(16, '0')}.json`);
  }

  async #persist(rec: MessageRecord): Promise<void> {
    await writeFileDurably(this.#path(rec.seq), Buffer.from(JSON.stringify(rec)), this.#tmp);
  }

  async send(body: string): Promise<{ messageId: string }> {
    if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES) throw new RangeError(`message of ${Buffer.byteLength(body)} bytes exceeds ${MAX_MESSAGE_BYTES}`);
    const messageId = await this.#lock.run('q', async () => {
      const rec: MessageRecord = {
        v: 1, id: randomUUID(), seq: this.#nextSeq++, body, sentAtMs: Date.now(),
        receiveCount: 0, invisibleUntilMs: 0, receipt: null,
      };
      await this.#persist(rec);
      this.#messages.set(rec.seq, rec);
      return rec.id;
    });
    for (const wake of [...this.#waiters]) wake();
    return { messageId };
  }

  /** Moves a received record into this (dead-letter) queue, keeping its id and body. */
  async #adopt(rec: MessageRecord): Promise<void> {
    await this.#lock.run('q', async () => {
      const copy: MessageRecord = { ...rec, seq: this.#nextSeq++, receiveCount: 0, invisibleUntilMs: 0, receipt: null };
      await this.#persist(copy);
      this.#messages.set(copy.seq, copy);
    });
  }

  async #take(max: number, visibilityMs: number): Promise<{ got: ReceivedMessage[]; nextVisibleMs: number }> {
    const now = Date.now();
    const got: ReceivedMessage[] = [];
    const dead: MessageRecord[] = [];
    let nextVisibleMs = Infinity;
    await this.#lock.run('q', async () => {
      for (const rec of [...this.#messages.values()].sort((a, b) => a.seq - b.seq)) {
        if (got.length >= max) break;
        if (rec.invisibleUntilMs > now) {
          nextVisibleMs = Math.min(nextVisibleMs, rec.invisibleUntilMs);
          continue;
        }
        if (this.#deadLetter && rec.receiveCount >= this.#maxReceiveCount) {
          dead.push(rec);
          continue;
        }
        rec.receiveCount += 1;
        rec.invisibleUntilMs = now + visibilityMs;
        rec.receipt = `${rec.seq}.${randomBytes(12).toString('hex')}`;
        await this.#persist(rec);
        got.push({ messageId: rec.id, body: rec.body, receipt: rec.receipt, receiveCount: rec.receiveCount });
      }
    });
    for (const rec of dead) {
      // Written to the dead-letter queue before it leaves this one: a crash between the two
      // leaves a duplicate, never a loss.
      await (await this.#deadLetter!()).#adopt(rec);
      await this.#lock.run('q', async () => {
        this.#messages.delete(rec.seq);
        await removeFileDurably(this.#path(rec.seq));
      });
    }
    return { got, nextVisibleMs };
  }

  async receive(options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const max = Math.min(Math.max(options.maxMessages ?? 1, 1), 10);
    const waitMs = Math.min(Math.max(options.waitSeconds ?? 0, 0), MAX_WAIT_SECONDS) * 1000;
    const visibilityMs = options.visibilityTimeoutSeconds !== undefined ? options.visibilityTimeoutSeconds * 1000 : this.#visibilityMs;
    const deadline = Date.now() + waitMs;
    for (;;) {
      options.signal?.throwIfAborted();
      const { got, nextVisibleMs } = await this.#take(max, visibilityMs);
      const now = Date.now();
      if (got.length > 0 || now >= deadline) return got;
      await this.#sleepUntil(Math.min(deadline, nextVisibleMs), options.signal);
    }
  }

  #sleepUntil(untilMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, untilMs - Date.now()));
      this.#waiters.add(done);
      // An abort before this point fires no event: check, or the sleep lasts the whole wait.
      if (signal?.aborted) done();
      else signal?.addEventListener('abort', done, { once: true });
    });
  }

  async delete(receipt: string): Promise<void> {
    const seq = Number.parseInt(receipt.split('.')[0] ?? '', 10);
    await this.#lock.run('q', async () => {
      const rec = this.#messages.get(seq);
      if (!rec || rec.receipt !== receipt) return;
      this.#messages.delete(seq);
      await removeFileDurably(this.#path(seq));
    });
  }
}
