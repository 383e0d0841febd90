/**
 * V8's heap growth for the long-running servers (process server, master target, `up`, and the
 * agent in tap mode, an NBD server).
 *
 * Their JavaScript heap is small (some tens of megabytes) while megabytes of batch buffers
 * pass through them every second. V8 lets the heap grow only a little past what survived the
 * last full collection and counts memory outside the heap (buffers) against that room, so with
 * its defaults these servers ran a full mark-compact every few hundred milliseconds under load:
 * a tenth to a fifth of their CPU time. Letting the heap grow to three times what survived
 * (instead of V8's default, which is far less for a small heap) makes those collections rare
 * at the cost of some tens of megabytes of memory.
 */
import { setFlagsFromString } from 'node:v8';

/** How far past the live heap V8 may grow before a full collection, in percent. */
export const SERVER_HEAP_GROWING_PERCENT = 200;

/** Call once as a server starts: the setting is the process's, read at every full collection. */
export function tuneHeapForServer(): void {
  setFlagsFromString(`--heap-growing-percent=${SERVER_HEAP_GROWING_PERCENT}`);
}
