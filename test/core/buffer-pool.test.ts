import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool, MIN_POOLED_BYTES } from '../../core/buffer-pool.ts';

test('large buffers are reused after release, rounded up to a power of two', { timeout: 60_000 }, () => {
  const pool = new BufferPool();
  const a = pool.acquire(300_000);
  assert.equal(a.length, 300_000);
  assert.equal(a.buffer.byteLength, 512 * 1024);
  pool.release(a);
  const b = pool.acquire(400_000);
  assert.equal(b.buffer, a.buffer, 'same memory again');
  const c = pool.acquire(400_000);
  assert.notEqual(c.buffer, b.buffer, 'memory in use is not handed out twice');
});

test('releasing twice, or a buffer from elsewhere, does not hand memory out twice', { timeout: 60_000 }, () => {
  const pool = new BufferPool();
  const a = pool.acquire(MIN_POOLED_BYTES);
  pool.release(a);
  pool.release(a);
  pool.release(Buffer.alloc(MIN_POOLED_BYTES));
  const b = pool.acquire(MIN_POOLED_BYTES);
  const c = pool.acquire(MIN_POOLED_BYTES);
  assert.equal(b.buffer, a.buffer);
  assert.notEqual(c.buffer, a.buffer);
});

test('small buffers are ordinary allocations; the pool keeps at most maxFreeBytes', { timeout: 60_000 }, () => {
  const pool = new BufferPool(1024 * 1024);
  const small = pool.acquire(4096);
  assert.equal(small.length, 4096);
  const bufs = [pool.acquire(1024 * 1024), pool.acquire(1024 * 1024)];
  for (const b of bufs) pool.release(b);
  const again = [pool.acquire(1024 * 1024), pool.acquire(1024 * 1024)];
  assert.equal(again.filter((b) => bufs.some((x) => x.buffer === b.buffer)).length, 1, 'only one fit under the cap');
});
