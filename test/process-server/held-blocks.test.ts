/** The process server's record of blocks a master target holds: bounded by entries, oldest use forgotten first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldBlocks } from '../../process-server/wan/held-blocks.ts';

test('beyond maxEntries the least recently added or asked about hash is forgotten', () => {
  const held = new HeldBlocks(2);
  held.add('a');
  held.add('b');
  assert.equal(held.has('a'), true, 'a used: b is now the oldest');
  held.add('c');
  assert.equal(held.has('b'), false);
  assert.equal(held.size, 2);
  held.add('a');
  held.add('d');
  assert.deepEqual(['a', 'c', 'd'].map((h) => held.has(h)), [true, false, true], 'adding a again made it the newest');
});

test('a block the master target said it lacks is forgotten', () => {
  const held = new HeldBlocks();
  held.add('a');
  held.forget('a');
  assert.equal(held.has('a'), false);
  assert.equal(held.size, 0);
});
