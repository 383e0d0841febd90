/**
 * One client connection: feeds received bytes to the handshake, then to the transmission
 * phase, and hands the export back to its source when the connection ends.
 */
import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.ts';
import { ByteQueue } from './byte-queue.ts';
import { readingIntoChosenBuffers, type ChosenBufferReader } from './chosen-buffer-socket.ts';
import type { NbdExport, NbdExportSource } from './export.ts';
import { HandshakeAbort, MAX_OPTION_BYTES, negotiate, releaseExport } from './handshake.ts';
import type { NbdLog } from './log.ts';
import { REQUEST_HEADER_BYTES } from './protocol.ts';
import { Transmission } from './transmission.ts';

/**
 * Reads that are not a large write's payload land in a receive area of this size, filled
 * from one read to the next (the bytes of earlier reads may still be in use), and replaced
 * once less than `MIN_READ_BYTES` of it is left.
 */
const RECEIVE_AREA_BYTES = 64 * 1024;
const MIN_READ_BYTES = 16 * 1024;

export interface ConnectionContext {
  source: NbdExportSource;
  log: NbdLog;
  maxRequestBytes: number;
  maxInFlight: number;
  handshakeTimeoutMs: number;
  /** Shared by every connection of a server. */
  pool: BufferPool;
  isShuttingDown(): boolean;
}

/** Raised inside the handshake's pending read when the socket goes away. */
class ConnectionClosed extends Error {}

export class NbdConnection implements ChosenBufferReader {
  /** Resolves when the connection is over and its export released; never rejects. */
  readonly done: Promise<void>;
  private readonly socket: Socket;
  private area = Buffer.allocUnsafeSlow(RECEIVE_AREA_BYTES);
  private areaUsed = 0;
  /** The buffer of the read under way is a write payload's (else the receive area). */
  private readingPayload = false;
  private readonly queue = new ByteQueue();
  private waiter: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private transmission: Transmission | undefined;
  private closed = false;
  private readonly logFields: Record<string, unknown>;

  /**
   * @param accepted a socket from a server created with `pauseOnConnect: true` (read into
   * buffers of our choosing), or any socket (read through 'data' events).
   */
  constructor(
    accepted: Socket,
    private readonly ctx: ConnectionContext,
    id: number,
  ) {
    const adopted = readingIntoChosenBuffers(accepted, this);
    const socket = adopted ?? accepted;
    this.socket = socket;
    this.logFields = { connection: id, remote: `${socket.remoteAddress}:${socket.remotePort}` };
    socket.setNoDelay(true);
    socket.setTimeout(ctx.handshakeTimeoutMs, () => {
      ctx.log.warn('nbd handshake timed out', this.logFields);
      socket.destroy();
    });
    if (!adopted) {
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.resume();
    }
    socket.on('error', (err) => ctx.log.info('nbd socket error', { ...this.logFields, error: err.message }));
    socket.on('close', () => this.onClose());
    this.done = this.run().catch((err) => {
      ctx.log.warn('nbd connection failed', { ...this.logFields, error: String(err) });
      socket.destroy();
    });
  }

  /** Drops the connection at once, pending calls or not. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Ends the connection for a server shutdown; resolves with `done`. */
  shutdown(): Promise<void> {
    if (this.transmission) void this.transmission.shutdown();
    else this.socket.destroy();
    return this.done;
  }

  private async run(): Promise<void> {
    let exp: NbdExport | undefined;
    try {
      exp = await negotiate(
        { read: (n) => this.read(n), write: (b) => void this.socket.write(b) },
        { ...this.ctx, logFields: this.logFields },
      );
    } catch (err) {
      if (err instanceof HandshakeAbort) {
        this.ctx.log.warn('nbd handshake refused', { ...this.logFields, reason: err.message });
      } else if (!(err instanceof ConnectionClosed)) throw err;
      this.socket.destroy();
      return;
    }
    if (!exp) {
      // NBD_OPT_ABORT: the ACK is written; the client closes, or we do.
      this.socket.end(() => this.socket.destroy());
      return;
    }
    const releaseCtx = { ...this.ctx, logFields: this.logFields };
    if (this.closed) {
      await releaseExport(releaseCtx, exp);
      return;
    }
    this.socket.setTimeout(0);
    this.ctx.log.info('nbd export opened', { ...this.logFields, export: exp.name });
    this.transmission = new Transmission(this.socket, this.queue, exp, {
      maxRequestBytes: this.ctx.maxRequestBytes,
      maxInFlight: this.ctx.maxInFlight,
      pool: this.ctx.pool,
      log: this.ctx.log,
      logFields: { ...this.logFields, export: exp.name },
    });
    if (this.ctx.isShuttingDown()) void this.transmission.shutdown();
    else this.transmission.pump();
    await this.transmission.finished;
    await releaseExport(releaseCtx, exp);
    this.ctx.log.info('nbd export closed', { ...this.logFields, export: exp.name });
  }

  nextReadBuffer(): Buffer {
    const wasPayload = this.readingPayload;
    const payload = this.transmission?.payloadTarget();
    this.readingPayload = payload !== undefined;
    if (payload) return payload;
    if (RECEIVE_AREA_BYTES - this.areaUsed < MIN_READ_BYTES) {
      this.area = Buffer.allocUnsafeSlow(RECEIVE_AREA_BYTES);
      this.areaUsed = 0;
    }
    // After a large write, most likely another: read its header alone so that its payload
    // too lands where it is written from, not here (to be moved).
    const end = wasPayload ? this.areaUsed + REQUEST_HEADER_BYTES : RECEIVE_AREA_BYTES;
    return this.area.subarray(this.areaUsed, end);
  }

  received(bytes: number): void {
    if (this.readingPayload) {
      this.transmission!.receivedPayload(bytes);
      return;
    }
    const chunk = this.area.subarray(this.areaUsed, this.areaUsed + bytes);
    this.areaUsed += bytes;
    this.onData(chunk);
  }

  private onData(chunk: Buffer): void {
    this.queue.push(chunk);
    if (this.transmission) {
      this.transmission.pump();
      return;
    }
    const w = this.waiter;
    if (w && this.queue.length >= w.bytes) {
      this.waiter = undefined;
      w.resolve(this.queue.take(w.bytes));
    } else if (this.queue.length > 2 * MAX_OPTION_BYTES) {
      // A client may not send ahead of our option replies; don't buffer what it does.
      this.socket.pause();
    }
  }

  private onClose(): void {
    this.closed = true;
    if (this.transmission) this.transmission.socketClosed();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new ConnectionClosed('connection closed during handshake'));
  }

  /** The handshake's reader: the next `n` bytes, whenever they arrive. */
  private read(n: number): Promise<Buffer> {
    if (this.queue.length >= n) return Promise.resolve(this.queue.take(n));
    if (this.closed) return Promise.reject(new ConnectionClosed('connection closed during handshake'));
    if (this.socket.isPaused()) this.socket.resume();
    return new Promise((resolve, reject) => (this.waiter = { bytes: n, resolve, reject }));
  }
}
