/** The NBD server's reply and payload buffers come from core's pool. */
export { BufferPool, MIN_POOLED_BYTES } from '../buffer-pool.ts';
