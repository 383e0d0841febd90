/** The master target's verified blocks: private copies, bounded by bytes, oldest use forgotten first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifiedBlocks } from '../../master-target/wan/verified-blocks.ts';

test('a kept block is a copy: changing the caller\'s buffer afterwards does not change it', () => {
  const v = new VerifiedBlocks(1024);
  const b = Buffer.alloc(100, 7);
  v.add('a', b);
  b.fill(9);
  assert.ok(v.get('a')!.equals(Buffer.alloc(100, 7)));
});

test('beyond its bytes the least recently used block is forgotten', () => {
  const v = new VerifiedBlocks(300);
  v.add('a', Buffer.alloc(100, 1));
  v.add('b', Buffer.alloc(100, 2));
  v.add('c', Buffer.alloc(100, 3));
  assert.ok(v.get('a'), 'a used: b is now the oldest');
  v.add('d', Buffer.alloc(100, 4));
  assert.equal(v.get('b'), undefined);
  assert.deepEqual(['a', 'c', 'd'].map((n) => v.get(n)?.[0]), [1, 3, 4]);
  assert.equal(v.size, 3);
  v.add('huge', Buffer.alloc(301));
  assert.equal(v.get('huge'), undefined, 'a block larger than the whole budget is not kept');
});

test('adding a name already kept changes nothing: the same content, and not counted as a use', () => {
  const v = new VerifiedBlocks(200);
  v.add('a', Buffer.alloc(100, 1));
  v.add('b', Buffer.alloc(100, 2));
  v.add('a', Buffer.alloc(100, 1));
  v.add('c', Buffer.alloc(100, 3));
  assert.equal(v.get('a'), undefined, 'a stayed the oldest');
  assert.deepEqual(['b', 'c'].map((n) => v.get(n)?.[0]), [2, 3]);
});
