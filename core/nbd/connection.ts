/**
 * One client connection: feeds received bytes to the handshake, then to the transmission
 * phase, and hands the export back to its source when the connection ends.
 */
import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.ts';
import { ByteQueue } from './byte-queue.ts';
import type { NbdExport, NbdExportSource } from './export.ts';
import { HandshakeAbort, MAX_OPTION_BYTES, negotiate, releaseExport } from './handshake.ts';
import type { NbdLog } from './log.ts';
import { Transmission } from './transmission.ts';

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

export class NbdConnection {
  /** Resolves when the connection is over and its export released; never rejects. */
  readonly done: Promise<void>;
  private readonly queue = new ByteQueue();
  private waiter: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private transmission: Transmission | undefined;
  private closed = false;
  private readonly logFields: Record<string, unknown>;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
    id: number,
  ) {
    this.logFields = { connection: id, remote: `${socket.remoteAddress}:${socket.remotePort}` };
    socket.setNoDelay(true);
    socket.setTimeout(ctx.handshakeTimeoutMs, () => {
      ctx.log.warn('nbd handshake timed out', this.logFields);
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => ctx.log.info('nbd socket error', { ...this.logFields, error: err.message }));
    socket.on('close', () => this.onClose());
    this.done = this.run().catch((err) => {
      ctx.log.warn('nbd connection failed', { ...this.logFields, error: String(err) });
      socket.destroy();
    });
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
