/**
 * An NBD server over TCP: fixed newstyle handshake, simple replies, any number of
 * connections, exports looked up by name at connect time (docs/nbd.md).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { UsageError } from '../errors.ts';
import { BufferPool } from './buffer-pool.ts';
import { NbdConnection } from './connection.ts';
import type { NbdExportSource } from './export.ts';
import { PREFERRED_BLOCK_BYTES } from './handshake.ts';
import { silentLog, type NbdLog } from './log.ts';

/** Largest read or write a client may send: the protocol's interoperable limit, 32 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Backend calls one connection may have pending at once. */
export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 16;
/** A client must finish the handshake within this time. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** `close()` destroys connections whose pending requests have not finished by then. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

export interface NbdServerOptions {
  /** Where exports are found, by name, each time a client asks. */
  exports: NbdExportSource;
  /** @default silentLog */
  log?: NbdLog;
  /** @default DEFAULT_MAX_REQUEST_BYTES (32 MiB); at least 4096. */
  maxRequestBytes?: number;
  /** @default DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION (16) */
  maxInFlightPerConnection?: number;
  /** @default DEFAULT_HANDSHAKE_TIMEOUT_MS (30 s) */
  handshakeTimeoutMs?: number;
  /** @default DEFAULT_CLOSE_TIMEOUT_MS (5 s) */
  closeTimeoutMs?: number;
}

export interface NbdServer {
  /**
   * Starts accepting connections; port 0 picks a free port. Resolves once listening, with
   * the address actually bound.
   */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Serves one already-connected socket (for example one accepted elsewhere). */
  serveSocket(socket: Socket): void;
  /** Connections currently open. */
  readonly connectionCount: number;
  /**
   * Stops accepting, answers requests already received with ESHUTDOWN, lets pending ones
   * finish, then closes every connection. Connections still busy after `closeTimeoutMs` are
   * destroyed.
   */
  close(): Promise<void>;
}

/**
 * Creates an NBD server.
 *
 * @example
 * const disk = await openFileExport('/var/lib/tidemark/disk0.img', { name: 'disk0' });
 * const server = createNbdServer({ exports: fixedExports([disk]) });
 * const { port } = await server.listen('127.0.0.1', 0);
 * // qemu-io -f raw nbd://127.0.0.1:PORT/disk0 -c 'read 0 4k'
 * await server.close();
 * await disk.close();
 */
export function createNbdServer(options: NbdServerOptions): NbdServer {
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < PREFERRED_BLOCK_BYTES || maxRequestBytes > 0x7fff_ffff) {
    throw new UsageError(`invalid maxRequestBytes ${maxRequestBytes}`, { hint: 'use 4096 to 2^31 - 1 bytes' });
  }
  const maxInFlight = options.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new UsageError(`invalid maxInFlightPerConnection ${maxInFlight}`, { hint: 'use 1 or more' });
  }
  const log = options.log ?? silentLog;
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const connections = new Set<NbdConnection>();
  let shuttingDown = false;
  let nextId = 1;
  let server: Server | undefined;

  const context = {
    source: options.exports,
    log,
    maxRequestBytes,
    maxInFlight,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    pool: new BufferPool(),
    isShuttingDown: () => shuttingDown,
  };

  function serveSocket(socket: Socket): void {
    if (shuttingDown) {
      socket.destroy();
      return;
    }
    const connection = new NbdConnection(socket, context, nextId++);
    connections.add(connection);
    void connection.done.then(() => connections.delete(connection));
  }

  return {
    get connectionCount() {
      return connections.size;
    },
    serveSocket,
    listen(host, port) {
      if (server) return Promise.reject(new UsageError('nbd server is already listening'));
      // Paused: a connection first moves its socket to buffers of its choosing (NbdConnection).
      const s = createServer({ noDelay: true, pauseOnConnect: true }, serveSocket);
      server = s;
      s.on('error', (err) => log.warn('nbd server error', { error: err.message }));
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(new UsageError(`cannot listen on ${host}:${port}`, { cause: err }));
        s.once('error', onError);
        s.listen(port, host, () => {
          s.off('error', onError);
          const address = s.address();
          const bound =
            typeof address === 'object' && address ? { host: address.address, port: address.port } : { host, port };
          log.info('nbd server listening', bound);
          resolve(bound);
        });
      });
    },
    async close() {
      shuttingDown = true;
      const stopped = server
        ? new Promise<void>((resolve) => server!.close(() => resolve()))
        : Promise.resolve();
      const all = Promise.all([...connections].map((c) => c.shutdown()));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), closeTimeoutMs);
      });
      if ((await Promise.race([all, timedOut])) === 'timeout') {
        log.warn('nbd connections still busy at close, destroying them', { count: connections.size });
        // A backend call that never settles must not hold close() forever: its connection
        // is dropped without waiting for the call.
        for (const connection of connections) connection.destroy();
      }
      clearTimeout(timer);
      await stopped;
    },
  };
}
