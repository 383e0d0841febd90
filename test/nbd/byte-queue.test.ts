import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteQueue } from '../../core/nbd/byte-queue.ts';

test('take within one chunk is a view; across chunks a copy of exactly the bytes asked', { timeout: 60_000 }, () => {
  const q = new ByteQueue();
  const a = Buffer.from([1, 2, 3, 4]);
  q.push(a);
  q.push(Buffer.from([5, 6]));
  q.push(Buffer.alloc(0));
  q.push(Buffer.from([7, 8, 9]));
  assert.equal(q.length, 9);
  const view = q.take(2);
  assert.deepEqual([...view], [1, 2]);
  assert.equal(view.buffer, a.buffer, 'same memory as the pushed chunk');
  assert.deepEqual([...q.take(5)], [3, 4, 5, 6, 7]);
  assert.equal(q.length, 2);
  assert.deepEqual([...q.take(2)], [8, 9]);
  assert.equal(q.length, 0);
  assert.throws(() => q.take(1), RangeError);
  assert.equal(q.take(0).length, 0);
});

test('takeParts gives views of the chunks the bytes lie in, copying nothing; headHolds says when take would not copy', { timeout: 60_000 }, () => {
  const q = new ByteQueue();
  const a = Buffer.from([1, 2, 3, 4]);
  const b = Buffer.from([5, 6]);
  const c = Buffer.from([7, 8, 9]);
  for (const chunk of [a, b, c]) q.push(chunk);
  q.take(1);
  assert.equal(q.headHolds(3), true);
  assert.equal(q.headHolds(4), false);
  const parts = q.takeParts(6);
  assert.deepEqual(parts.map((p) => [...p]), [[2, 3, 4], [5, 6], [7]]);
  assert.deepEqual(parts.map((p) => p.buffer), [a.buffer, b.buffer, c.buffer], 'same memory as the pushed chunks');
  assert.equal(q.length, 2);
  assert.deepEqual([...q.take(2)], [8, 9]);
  assert.equal(q.headHolds(1), false, 'nothing queued');
  assert.throws(() => q.takeParts(1), RangeError);
  assert.throws(() => q.takeParts(0), RangeError);
});

test('skip drops bytes across chunks and stops at what is queued', { timeout: 60_000 }, () => {
  const q = new ByteQueue();
  q.push(Buffer.from([1, 2, 3]));
  q.push(Buffer.from([4, 5, 6]));
  assert.equal(q.skip(4), 4);
  assert.deepEqual([...q.take(1)], [5]);
  assert.equal(q.skip(10), 1);
  assert.equal(q.length, 0);
  q.push(Buffer.from([9]));
  assert.deepEqual([...q.take(1)], [9]);
});

test('many small chunks in, mixed takes out, byte order kept', { timeout: 60_000 }, () => {
  const q = new ByteQueue();
  const all: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const chunk = Buffer.from([i & 0xff, (i * 7) & 0xff, (i * 13) & 0xff].slice(0, 1 + (i % 3)));
    all.push(...chunk);
    q.push(chunk);
  }
  const out: number[] = [];
  let n = 1;
  while (q.length > 0) {
    const take = Math.min(n, q.length);
    out.push(...q.take(take));
    n = (n * 5 + 3) % 97 || 1;
  }
  assert.deepEqual(out, all);
  q.push(Buffer.from([1]));
  q.clear();
  assert.equal(q.length, 0);
});

test('moveAllTo copies every queued byte, across chunks, to the start of the target and empties the queue', { timeout: 60_000 }, () => {
  const q = new ByteQueue();
  for (const chunk of [[1, 2, 3], [4], [5, 6]]) q.push(Buffer.from(chunk));
  q.take(1);
  const target = Buffer.alloc(8, 0xff);
  assert.equal(q.moveAllTo(target), 5);
  assert.deepEqual([...target], [2, 3, 4, 5, 6, 0xff, 0xff, 0xff]);
  assert.equal(q.length, 0);
  assert.equal(q.moveAllTo(target), 0, 'nothing queued: nothing moved');
  q.push(Buffer.from([7]));
  assert.deepEqual([...q.take(1)], [7], 'the queue goes on working');
});
