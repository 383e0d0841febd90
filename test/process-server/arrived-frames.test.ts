/** Frames kept in memory from arrival until shipped: copies, within one budget for all streams, given back when dropped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../core/buffer-pool.ts';
import { ArrivedFrameBudget, ArrivedFrames } from '../../process-server/arrived-frames.ts';

const KiB = 1024;

test('arrived frames are copies, served only when every one asked for is kept, and given back when dropped', () => {
  const budget = new ArrivedFrameBudget(1024 * KiB);
  const a = new ArrivedFrames(new BufferPool(), budget);
  const f1 = Buffer.alloc(100 * KiB, 1);
  a.keep(1, 10, f1);
  a.keep(11, 20, Buffer.alloc(100 * KiB, 2));
  f1.fill(9);
  assert.deepEqual(a.get([1, 11])!.map((f) => [f.length, f[0]]), [[100 * KiB, 1], [100 * KiB, 2]]);
  assert.equal(a.get([1, 21]), undefined, 'one frame missing: read them all back instead');
  assert.equal(budget.usedBytes, 2 * 128 * KiB, 'counted by the pooled buffers behind them');
  a.dropThrough(15);
  assert.equal(a.get([1]), undefined);
  assert.ok(a.get([11]));
  a.clear();
  assert.equal(budget.usedBytes, 0);
});

test('streams share one budget: beyond it frames are not kept', () => {
  const budget = new ArrivedFrameBudget(256 * KiB);
  const pool = new BufferPool();
  const a = new ArrivedFrames(pool, budget);
  const b = new ArrivedFrames(pool, budget);
  a.keep(1, 1, Buffer.alloc(100 * KiB));
  b.keep(1, 1, Buffer.alloc(100 * KiB));
  b.keep(2, 2, Buffer.alloc(100 * KiB));
  assert.ok(a.get([1]) && b.get([1]));
  assert.equal(b.get([2]), undefined);
  a.dropThrough(1);
  b.keep(2, 2, Buffer.alloc(100 * KiB));
  assert.ok(b.get([2]), 'room again once the other stream shipped');
});
