/**
 * An accepted socket re-made so that every read lands in a buffer the caller chooses (net's
 * `onread` option), instead of a fresh 64 KiB buffer per read.
 *
 * Why: a large write's payload can then be received straight into the buffer it is written
 * from, in reads as large as the socket has data, and nothing is allocated per read. With
 * fresh buffers, most of the page faults of an NBD server taking 1 MiB writes were the kernel
 * filling never-touched receive buffers (13,000–17,000 faults per GB written, against
 * 240–2,900 for nbdkit), and every buffer went through malloc and V8's external-memory sweeping.
 *
 * `net.Server` has no `onread` option, so the accepted socket's handle is moved to a new
 * `net.Socket` built with one; that uses two internal fields of Node's sockets (`_handle`,
 * `_server`). Where they are not as expected (another Node, a TLS socket, a socket already
 * reading), the socket is left as it is and the caller reads it with 'data' events.
 */
import { Socket } from 'node:net';

export interface ChosenBufferReader {
  /** Where the next read lands; called before each read. Not called for a read in progress. */
  nextReadBuffer(): Buffer;
  /** `bytes` (more than 0) arrived at the start of the buffer `nextReadBuffer` last gave. */
  received(bytes: number): void;
}

interface NodeSocketInternals {
  _handle?: { useUserBuffer?: unknown; reading?: boolean } | null;
  _server?: unknown;
  server?: unknown;
}

/**
 * The socket rebuilt to read into `reader`'s buffers, or undefined when `socket` cannot be (it
 * is then unchanged). `socket` must come from a server created with `pauseOnConnect: true`
 * and not have been read from.
 */
export function readingIntoChosenBuffers(socket: Socket, reader: ChosenBufferReader): Socket | undefined {
  const old = socket as unknown as NodeSocketInternals;
  const handle = old._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || handle.reading || socket.readableLength > 0 || socket.destroyed) {
    return undefined;
  }
  // `handle` is a documented-internal option of the Socket constructor (not in its types).
  const adopted = new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: () => reader.nextReadBuffer(),
      callback: (bytes: number) => {
        reader.received(bytes);
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
  // The server counts its connections through the socket it made; the count now goes down
  // when the adopted socket closes, and the old object is left without a handle.
  const adoptedInternals = adopted as unknown as NodeSocketInternals;
  adoptedInternals._server = old._server;
  adoptedInternals.server = old.server;
  old._server = null;
  old._handle = null;
  return adopted;
}
