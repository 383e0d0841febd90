/** The master target's content index: where each hashed block was last written, bounded by entries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContentIndex, type BlockLocation } from '../../master-target/wan/content-index.ts';

const at = (offset: number): BlockLocation => ({ machine: 'm', disk: 'd0', offset, lengthBytes: 65536 });

test('beyond maxEntries the least recently noted or looked up block is forgotten', () => {
  const index = new ContentIndex(2);
  index.note('a', at(0));
  index.note('b', at(1));
  assert.deepEqual(index.lookup('a'), at(0), 'a used: b is now the oldest');
  index.note('c', at(2));
  assert.equal(index.lookup('b'), undefined);
  assert.equal(index.size, 2);
  index.note('a', at(9));
  index.note('d', at(3));
  assert.deepEqual([index.lookup('a'), index.lookup('c'), index.lookup('d')], [at(9), undefined, at(3)], 'noting a again moved it and made it the newest');
});

test('a forgotten block is no longer found', () => {
  const index = new ContentIndex();
  index.note('a', at(0));
  index.forget('a');
  assert.equal(index.lookup('a'), undefined);
  assert.equal(index.size, 0);
});
