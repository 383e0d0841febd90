/**
 * The transmission phase of one connection: parse requests from the receive queue, check
 * them, call the export, send simple replies.
 *
 * Speed matters here (it sits on a guest's disk path), so the hot path stays synchronous: a
 * backend that answers with a plain value is replied to in the same turn, and replies made
 * while parsing one burst of requests leave in one write (cork). A backend that returns a
 * promise lets later requests start meanwhile, up to `maxInFlight`; their replies go out as
 * they settle, which the protocol allows (the handle pairs them).
 */
import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.ts';
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
  /** A parsed write header waiting for its payload. */
  private waitingWrite: Request | undefined;
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
    this.socket.cork();
    try {
      this.parseRequests();
    } catch (err) {
      // A bug here must not take the process down: drop this connection only.
      this.options.log.warn('nbd connection failed', { ...this.options.logFields, error: String(err) });
      this.socket.destroy();
    } finally {
      this.socket.uncork();
      this.pumping = false;
    }
    if (this.state === 'shutting-down') this.drain();
    this.applyReadPressure();
  }

  /** The socket closed: nothing more can be sent. */
  socketClosed(): void {
    this.state = 'closed';
    this.queue.clear();
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
      let payload: Buffer | undefined;
      if (request.type === NbdCmd.WRITE) {
        if (queue.length < request.length) return;
        payload = queue.take(request.length, this.options.pool);
        this.waitingWrite = undefined;
      }
      if (this.state === 'shutting-down') {
        if (payload) this.options.pool.release(payload);
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

  private dispatch(r: Request, payload: Buffer | undefined): void {
    const refused = this.check(r);
    if (refused !== 0) {
      if (payload) this.options.pool.release(payload);
      this.reply(r, refused);
      return;
    }
    const exp = this.exp;
    const fua = (r.flags & CmdFlag.FUA) !== 0;
    const ok = () => this.reply(r, 0);
    const failed = (err: unknown) => this.fail(r, err);
    switch (r.type) {
      case NbdCmd.READ:
        if (r.length === 0) this.reply(r, 0, Buffer.alloc(0));
        else if (exp.readInto) this.readInto(r, exp.readInto.bind(exp));
        else this.run(() => exp.read(r.offset, r.length), (data) => this.sendRead(r, data), failed);
        return;
      case NbdCmd.WRITE: {
        const data = payload!;
        // The payload buffer is reused once the backend is done with it (see NbdExport.write).
        const release = () => this.options.pool.release(data);
        this.run(
          () => exp.write(r.offset, data, fua),
          () => (release(), ok()),
          (err) => (release(), failed(err)),
        );
        return;
      }
      case NbdCmd.FLUSH:
        this.run(() => exp.flush(), ok, failed);
        return;
      case NbdCmd.TRIM:
        this.run(() => exp.trim(r.offset, r.length, fua), ok, failed);
        return;
      case NbdCmd.WRITE_ZEROES:
        this.run(() => exp.writeZeroes(r.offset, r.length, fua, (r.flags & CmdFlag.NO_HOLE) === 0), ok, failed);
        return;
      case NbdCmd.DISC:
        // No reply; pending requests finish first.
        this.state = 'draining';
        this.drain();
        return;
    }
  }

  /**
   * Calls the backend; `done` or `failed` runs now if it answered now, else when its promise
   * settles (meanwhile later requests may start).
   */
  private run<T>(call: () => T | Promise<T>, done: (value: T) => void, failed: (err: unknown) => void): void {
    let result: T | Promise<T>;
    try {
      result = call();
    } catch (err) {
      failed(err);
      return;
    }
    if (typeof (result as { then?: unknown } | undefined)?.then === 'function') {
      this.inFlight++;
      (result as Promise<T>).then(
        (value) => this.settled(() => done(value)),
        (err) => this.settled(() => failed(err)),
      );
      return;
    }
    done(result as T);
  }

  private settled(send: () => void): void {
    this.inFlight--;
    try {
      send();
    } catch (err) {
      this.options.log.warn('nbd reply failed', { ...this.options.logFields, error: String(err) });
      this.socket.destroy();
    }
    if (this.state === 'open' || this.state === 'shutting-down') this.pump();
    else this.drain();
  }

  /** A read through `readInto`: data lands after the reply header in one pooled buffer. */
  private readInto(r: Request, readInto: (offset: number, target: Buffer) => unknown): void {
    const pool = this.options.pool;
    const reply = pool.acquire(SIMPLE_REPLY_HEADER_BYTES + r.length);
    this.run(
      () => readInto(r.offset, reply.subarray(SIMPLE_REPLY_HEADER_BYTES)),
      () => {
        writeReplyHeader(reply, 0, r.handle);
        this.send(reply, undefined, () => pool.release(reply));
      },
      (err) => {
        pool.release(reply);
        this.fail(r, err);
      },
    );
  }

  private sendRead(r: Request, data: Buffer): void {
    if (!Buffer.isBuffer(data) || data.length !== r.length) {
      this.options.log.warn('nbd export read returned the wrong length', {
        ...this.options.logFields,
        offset: r.offset,
        length: r.length,
        returned: Buffer.isBuffer(data) ? (data as Buffer).length : typeof data,
      });
      this.reply(r, NbdErrno.EIO);
      return;
    }
    this.reply(r, 0, data);
  }

  private fail(r: Request, err: unknown): void {
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

  private reply(r: Request, errno: number, data?: Buffer): void {
    const header = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES);
    writeReplyHeader(header, errno, r.handle);
    this.send(header, data);
  }

  /**
   * Writes one reply (one or two buffers). Inside a burst the socket is corked already and
   * small replies join it; a large reply first lets the burst go, then leaves on its own.
   */
  private send(first: Buffer, second?: Buffer, written?: () => void): void {
    const socket = this.socket;
    if (this.state === 'closed' || socket.destroyed || socket.writableEnded) {
      written?.();
      return;
    }
    const large = first.length + (second?.length ?? 0) > BATCHED_REPLY_BYTES;
    if (this.pumping && large) socket.uncork();
    // Cork only to join two buffers into one write.
    const join = second !== undefined && second.length > 0 && (!this.pumping || large);
    if (join) socket.cork();
    if (second !== undefined && second.length > 0) {
      socket.write(first);
      socket.write(second, written);
    } else socket.write(first, written);
    if (join) socket.uncork();
    if (this.pumping && large) socket.cork();
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
