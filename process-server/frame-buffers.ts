/**
 * The process server's buffers for frames: bodies of incoming batches, spooled frames read
 * back, and batches encoded for the master target. Reused rather than allocated, since fresh
 * megabyte buffers cost page faults and make V8 collect every few dozen megabytes.
 */
import { BufferPool } from '../core/buffer-pool.ts';
import { ArrivedFrameBudget } from './arrived-frames.ts';

/** Free buffers kept for reuse: a few dozen batches in flight at once. */
const KEPT_FREE_BYTES = 256 * 1024 * 1024;

export const frameBuffers = new BufferPool(KEPT_FREE_BYTES);

/** Memory for copies of frames kept from arrival until shipped, all streams together (arrived-frames.ts). */
export const arrivedFrameBudget = new ArrivedFrameBudget();
