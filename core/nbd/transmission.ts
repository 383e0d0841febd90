/**
 * The transmission phase of one connection: parse requests from the receive queue, check
 * them, call the export, send simple replies.
 *
 * Speed matters here (it sits on a guest's disk path), so the hot path stays synchronous and
 * allocates little: a backend that answers with a plain value is replied to in the same turn,
 * and the small replies made while parsing one burst of requests leave in one write. A
 * backend that returns a promise lets later requests start meanwhile, up to `maxInFlight`;
 * their replies go out as they settle, which the protocol allows (the handle pairs them).
 */
import type { Socket } from 'node:net';
import { MIN_POOLED_BYTES, type BufferPool } from './buffer-pool.ts';
import type { ByteQueue } from './byte-queue.ts';
import type { NbdExport } from './export.ts';
import type { NbdLog } from './log.ts';
import { nbdErrnoOf } from './nbd-error.ts';
import {
  CmdFlag,
  NbdCmd,
  NbdErrno,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
} from './protocol.ts';

/**
 * Replies up to this size are batched with the other replies of a burst. Larger ones leave at
 * once: holding a 256 KiB read reply back for its neighbours cost a third of the throughput.
 */
const BATCHED_REPLY_BYTES = 64 * 1024;
/** A batch of small replies is sent once it holds this much, burst over or not. */
const MAX_BATCH_BYTES = 256 * 1024;
/** Stop parsing requests while this much reply data waits to be sent. */
const MAX_UNSENT_REPLY_BYTES = 16 * 1024 * 1024;

export interface TransmissionOptions {
  /** Where large payload and reply buffers come from and go back to. */
  pool: BufferPool;
  /** Largest read or write length; a larger one gets EINVAL (a write's payload is skipped). */
  maxRequestBytes: number;
  /** Requests of one connection whose backend call may be pending at once. */
  maxInFlight: number;
  log: NbdLog;
  logFields: Record<string, unknown>;
}

interface Request {
  flags: number;
  type: number;
  /** The client's 8-byte handle, echoed in the reply. */
  handle: Buffer;
  offset: number;
  length: number;
}

type State = 'open' | 'shutting-down' | 'draining' | 'closed';

export class Transmission {
  /** Resolves once no backend call is pending and the connection is finished. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private state: State = 'open';
  private pumping = false;
  private inFlight = 0;
  private waitingForDrain = false;
  /** Small replies made during the current burst, sent as one write when it ends. */
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchWritten: (() => void)[] = [];
  /** A parsed write header waiting for its payload. */
  private waitingWrite: Request | undefined;
  /** A write whose payload is being received straight into `buffer` (see payloadTarget). */
  private direct: { buffer: Buffer; filled: number } | undefined;
  /** A write refused for its length, whose payload is still being skipped. */
  private skipping: { request: Request; bytesLeft: number } | undefined;
  private readonly sizeBytes: number;
  /** Receive queue size at which the socket stops reading. */
  private readonly maxQueuedBytes: number;

  constructor(
    private readonly socket: Socket,
    private readonly queue: ByteQueue,
    private readonly exp: NbdExport,
    private readonly options: TransmissionOptions,
  ) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    // The size is fixed for the life of the connection, as the client was told at handshake.
    this.sizeBytes = exp.sizeBytes;
    this.maxQueuedBytes = options.maxRequestBytes + 1024 * 1024;
  }

  /** Parses and starts every complete request queued. Call whenever bytes arrive. */
  pump(): void {
    if (this.pumping || this.state === 'closed' || this.state === 'draining') return;
    this.pumping = true;
    try {
      this.parseRequests();
    } catch (err) {
      // A bug here must not take the process down: drop this connection only.
      this.options.log.warn('nbd connection failed', { ...this.options.logFields, error: String(err) });
      this.socket.destroy();
    } finally {
      this.pumping = false;
      this.flushBatch();
    }
    if (this.state === 'shutting-down') this.drain();
    this.applyReadPressure();
  }

  /**
   * Where the connection's next read should land, when it can choose: the rest of a large
   * write's payload, in a pooled buffer the write is then served from (whatever of it was
   * already queued is moved there first). Undefined when the next bytes are not such a payload.
   */
  payloadTarget(): Buffer | undefined {
    const d = this.direct;
    // A payload complete but not yet served (requests at maxInFlight): the next bytes are not its.
    if (d) return d.filled < d.buffer.length ? d.buffer.subarray(d.filled) : undefined;
    const r = this.waitingWrite;
    // From the size the pool reuses: a smaller payload would get a fresh buffer, saving nothing.
    if (!r || r.length < MIN_POOLED_BYTES || this.queue.length >= r.length) return undefined;
    if (this.state !== 'open' && this.state !== 'shutting-down') return undefined;
    const buffer = this.options.pool.acquire(r.length);
    this.direct = { buffer, filled: this.queue.moveAllTo(buffer) };
    return buffer.subarray(this.direct.filled);
  }

  /** `bytes` arrived in the buffer payloadTarget gave last. */
  receivedPayload(bytes: number): void {
    const d = this.direct!;
    d.filled += bytes;
    if (d.filled === d.buffer.length) this.pump();
  }

  /** The socket closed: nothing more can be sent. */
  socketClosed(): void {
    this.state = 'closed';
    this.queue.clear();
    this.direct = undefined;
    this.finishIfIdle();
  }

  /**
   * The server is closing: requests already received are answered with ESHUTDOWN, pending
   * ones finish, then the connection ends. Resolves with `finished`.
   */
  shutdown(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'shutting-down';
      this.pump();
    }
    return this.finished;
  }

  private parseRequests(): void {
    const queue = this.queue;
    while (this.state === 'open' || this.state === 'shutting-down') {
      if (this.inFlight >= this.options.maxInFlight) return;
      if (this.socket.writableLength > MAX_UNSENT_REPLY_BYTES) {
        if (!this.waitingForDrain) {
          this.waitingForDrain = true;
          this.socket.once('drain', () => {
            this.waitingForDrain = false;
            this.pump();
          });
        }
        return;
      }
      if (this.skipping) {
        this.skipping.bytesLeft -= queue.skip(this.skipping.bytesLeft);
        if (this.skipping.bytesLeft > 0) return;
        this.reply(this.skipping.request, NbdErrno.EINVAL);
        this.skipping = undefined;
        continue;
      }
      let request = this.waitingWrite;
      if (!request) {
        if (queue.length < REQUEST_HEADER_BYTES) return;
        const h = queue.take(REQUEST_HEADER_BYTES);
        if (h.readUInt32BE(0) !== NBD_REQUEST_MAGIC) {
          // Framing is lost: the spec's answer is to drop the connection.
          this.options.log.warn('nbd request with bad magic, disconnecting', this.options.logFields);
          this.state = 'draining';
          this.drain();
          return;
        }
        request = {
          flags: h.readUInt16BE(4),
          type: h.readUInt16BE(6),
          handle: h.subarray(8, 16),
          offset: h.readUInt32BE(16) * 0x1_0000_0000 + h.readUInt32BE(20),
          length: h.readUInt32BE(24),
        };
        if (request.type === NbdCmd.WRITE) {
          if (request.length > this.options.maxRequestBytes) {
            this.skipping = { request, bytesLeft: request.length };
            continue;
          }
          this.waitingWrite = request;
        }
      }
      let payload: Buffer | Buffer[] | undefined;
      const direct = this.direct;
      if (direct) {
        if (direct.filled < direct.buffer.length) return;
        payload = direct.buffer;
        this.direct = undefined;
        this.waitingWrite = undefined;
      } else if (request.type === NbdCmd.WRITE) {
        if (queue.length < request.length) return;
        const exp = this.exp;
        payload = exp.writeParts && request.length >= (exp.writePartsMinBytes ?? 1) && !queue.headHolds(request.length)
          ? queue.takeParts(request.length)
          : queue.take(request.length, this.options.pool);
        this.waitingWrite = undefined;
      }
      if (this.state === 'shutting-down') {
        if (Buffer.isBuffer(payload)) this.options.pool.release(payload);
        this.reply(request, NbdErrno.ESHUTDOWN);
      } else this.dispatch(request, payload);
    }
  }

  /** Why `r` cannot be served (an errno), or 0. Order follows the spec's SHOULDs. */
  private check(r: Request): number {
    const allowedFlags = r.type === NbdCmd.WRITE_ZEROES ? CmdFlag.FUA | CmdFlag.NO_HOLE : CmdFlag.FUA;
    if ((r.flags & ~allowedFlags) !== 0) return NbdErrno.EINVAL;
    const beyondEnd = r.offset > this.sizeBytes || r.length > this.sizeBytes - r.offset;
    switch (r.type) {
      case NbdCmd.READ:
        if (r.length > this.options.maxRequestBytes || beyondEnd) return NbdErrno.EINVAL;
        return 0;
      case NbdCmd.WRITE:
      case NbdCmd.WRITE_ZEROES:
        if (this.exp.readOnly) return NbdErrno.EPERM;
        return beyondEnd ? NbdErrno.ENOSPC : 0;
      case NbdCmd.TRIM:
        if (this.exp.readOnly) return NbdErrno.EPERM;
        return beyondEnd ? NbdErrno.EINVAL : 0;
      case NbdCmd.FLUSH:
      case NbdCmd.DISC:
        return 0;
      default:
        return NbdErrno.EINVAL;
    }
  }

  /**
   * Starts the backend call for `r`. `payload` is a write's data; a read through `readInto`
   * gets a reply buffer instead. Either is handed back to the pool when the call is over.
   * Closures are made only for calls that return a promise: the synchronous path is hot.
   */
  private dispatch(r: Request, payload: Buffer | Buffer[] | undefined): void {
    const pool = this.options.pool;
    const refused = this.check(r);
    if (refused !== 0) {
      if (Buffer.isBuffer(payload)) pool.release(payload);
      this.reply(r, refused);
      return;
    }
    const exp = this.exp;
    const fua = (r.flags & CmdFlag.FUA) !== 0;
    // Views of the receive buffer (parts) go back to no pool.
    let buffer = Buffer.isBuffer(payload) ? payload : undefined;
    let result: unknown;
    try {
      switch (r.type) {
        case NbdCmd.READ:
          if (r.length === 0) {
            this.reply(r, 0);
            return;
          }
          if (exp.readInto) {
            // The data lands right after the reply header: one buffer, one write, no copy.
            buffer = pool.acquire(SIMPLE_REPLY_HEADER_BYTES + r.length);
            result = exp.readInto(r.offset, buffer.subarray(SIMPLE_REPLY_HEADER_BYTES));
          } else result = exp.read(r.offset, r.length);
          break;
        case NbdCmd.WRITE:
          result = Array.isArray(payload) ? exp.writeParts!(r.offset, payload, r.length, fua) : exp.write(r.offset, payload!, fua);
          break;
        case NbdCmd.FLUSH:
          result = exp.flush();
          break;
        case NbdCmd.TRIM:
          result = exp.trim(r.offset, r.length, fua);
          break;
        case NbdCmd.WRITE_ZEROES:
          result = exp.writeZeroes(r.offset, r.length, fua, (r.flags & CmdFlag.NO_HOLE) === 0);
          break;
        case NbdCmd.DISC:
          // No reply; pending requests finish first.
          this.state = 'draining';
          this.drain();
          return;
      }
    } catch (err) {
      this.failed(r, buffer, err);
      return;
    }
    if (result instanceof Promise || typeof (result as { then?: unknown } | undefined)?.then === 'function') {
      this.inFlight++;
      Promise.resolve(result).then(
        (value) => this.settled(r, buffer, value, undefined, false),
        (err) => this.settled(r, buffer, undefined, err, true),
      );
      return;
    }
    this.succeeded(r, buffer, result);
  }

  private settled(r: Request, buffer: Buffer | undefined, value: unknown, err: unknown, isError: boolean): void {
    this.inFlight--;
    try {
      if (isError) this.failed(r, buffer, err);
      else this.succeeded(r, buffer, value);
    } catch (e) {
      this.options.log.warn('nbd reply failed', { ...this.options.logFields, error: String(e) });
      this.socket.destroy();
    }
    if (this.state === 'open' || this.state === 'shutting-down') this.pump();
    else this.drain();
  }

  private succeeded(r: Request, buffer: Buffer | undefined, value: unknown): void {
    const pool = this.options.pool;
    if (r.type === NbdCmd.READ) {
      if (buffer) {
        writeReplyHeader(buffer, 0, r.handle);
        this.send(buffer, undefined, () => pool.release(buffer));
      } else this.sendRead(r, value);
      return;
    }
    if (buffer) pool.release(buffer);
    this.reply(r, 0);
  }

  private failed(r: Request, buffer: Buffer | undefined, err: unknown): void {
    if (buffer) this.options.pool.release(buffer);
    const errno = nbdErrnoOf(err);
    this.options.log.warn('nbd request failed', {
      ...this.options.logFields,
      type: r.type,
      offset: r.offset,
      length: r.length,
      errno,
      error: String(err),
    });
    this.reply(r, errno);
  }

  private sendRead(r: Request, data: unknown): void {
    if (!Buffer.isBuffer(data) || data.length !== r.length) {
      this.options.log.warn('nbd export read returned the wrong length', {
        ...this.options.logFields,
        offset: r.offset,
        length: r.length,
        returned: Buffer.isBuffer(data) ? data.length : typeof data,
      });
      this.reply(r, NbdErrno.EIO);
      return;
    }
    this.reply(r, 0, data);
  }

  private reply(r: Request, errno: number, data?: Buffer): void {
    const header = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES);
    writeReplyHeader(header, errno, r.handle);
    this.send(header, data);
  }

  /**
   * Sends one reply (one or two buffers); `written` runs once the buffers may be reused.
   * During a burst a small reply joins the batch; a large one first lets the batch go, then
   * leaves on its own.
   */
  private send(first: Buffer, second?: Buffer, written?: () => void): void {
    const bytes = first.length + (second?.length ?? 0);
    if (this.pumping && bytes <= BATCHED_REPLY_BYTES) {
      this.batch.push(first);
      if (second !== undefined && second.length > 0) this.batch.push(second);
      this.batchBytes += bytes;
      // The batch is copied into one buffer when sent, except a lone reply (see flushBatch).
      if (written) this.batchWritten.push(written);
      if (this.batchBytes >= MAX_BATCH_BYTES) this.flushBatch();
      return;
    }
    this.flushBatch();
    const socket = this.socket;
    if (!this.writable()) {
      written?.();
      return;
    }
    if (second !== undefined && second.length > 0) {
      // Corked, the two buffers leave in one writev.
      socket.cork();
      socket.write(first);
      socket.write(second, written);
      socket.uncork();
    } else socket.write(first, written);
  }

  private flushBatch(): void {
    // Replies leave only after whatever their calls deferred is done.
    this.exp.commit?.();
    const count = this.batch.length;
    if (count === 0) return;
    const data = count === 1 ? this.batch[0] : Buffer.concat(this.batch, this.batchBytes);
    const written = this.batchWritten;
    this.batch = [];
    this.batchBytes = 0;
    this.batchWritten = [];
    const done = written.length === 0 ? undefined : () => written.forEach((w) => w());
    if (!this.writable()) done?.();
    else if (count === 1) this.socket.write(data, done);
    else {
      this.socket.write(data);
      // Concatenated: the originals are free already.
      done?.();
    }
  }

  private writable(): boolean {
    const socket = this.socket;
    return this.state !== 'closed' && !socket.destroyed && !socket.writableEnded;
  }

  /** Ends the connection once nothing is pending (after DISC, bad magic or shutdown). */
  private drain(): void {
    if (this.inFlight > 0) {
      // Stop reading meanwhile unless requests still get ESHUTDOWN replies.
      if (this.state === 'draining') this.socket.pause();
      return;
    }
    if (this.state !== 'closed') {
      this.state = 'draining';
      // Whatever else the client sends is not read.
      this.queue.clear();
      const socket = this.socket;
      socket.pause();
      this.flushBatch();
      if (!socket.destroyed && !socket.writableEnded) socket.end(() => socket.destroy());
    }
    this.finishIfIdle();
  }

  private finishIfIdle(): void {
    if (this.inFlight === 0) this.resolveFinished();
  }

  /** Stops reading while a full request's worth of bytes waits; resumes below it. */
  private applyReadPressure(): void {
    const socket = this.socket;
    if (this.state !== 'open' && this.state !== 'shutting-down') return;
    if (this.queue.length >= this.maxQueuedBytes) socket.pause();
    else if (socket.isPaused()) socket.resume();
  }
}

function writeReplyHeader(target: Buffer, errno: number, handle: Buffer): void {
  target.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  target.writeUInt32BE(errno, 4);
  handle.copy(target, 8);
}
