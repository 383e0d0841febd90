/**
 * The master target's buffers for batches: bodies as they arrive, and the bytes of
 * references, pieces and compressed records resolved before a batch is applied. Reused rather
 * than allocated, since fresh megabyte buffers cost page faults and make V8 collect every few
 * dozen megabytes.
 */
import { BufferPool } from '../core/buffer-pool.ts';

/** Free buffers kept for reuse: a few batches in flight at once, each up to a frame's 64 MiB. */
const KEPT_FREE_BYTES = 256 * 1024 * 1024;

export const frameBuffers = new BufferPool(KEPT_FREE_BYTES);
