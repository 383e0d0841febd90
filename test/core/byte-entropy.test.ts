import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { sampledEntropyBits } from '../../core/byte-entropy.ts';

test('sampled entropy: 0 for one value, 1 for two equally common, near 8 for random bytes', () => {
  assert.equal(sampledEntropyBits(Buffer.alloc(4096, 7)), 0);
  assert.equal(sampledEntropyBits(Buffer.from(Array.from({ length: 4096 }, (_, i) => (Math.floor(i / 32) % 2) * 255))), 1);
  for (const bytes of [1024, 4096, 65536]) {
    const random = sampledEntropyBits(randomBytes(bytes));
    assert.ok(random > 7.75 && random < 7.9, `random ${bytes}: ${random}`);
  }
  // Words whose high bytes are always zero: a sample of every fourth byte would see only one lane.
  const words = Buffer.alloc(4096);
  for (let at = 0; at < words.length; at += 4) words.writeUInt16LE(randomInt(65536), at);
  const lanes = sampledEntropyBits(words);
  assert.ok(lanes > 4 && lanes < 7, `two random lanes of four: ${lanes}`);
  const half = Buffer.concat([randomBytes(2048), Buffer.from('the replica at each point equals the expected image\n'.repeat(40)).subarray(0, 2048)]);
  assert.ok(sampledEntropyBits(half) < 7.5, 'half text, half random');
  const text = sampledEntropyBits(Buffer.from('the replica at each point equals the expected image\n'.repeat(100)));
  assert.ok(text > 3 && text < 5, `text: ${text}`);
  assert.equal(sampledEntropyBits(Buffer.alloc(0)), 0);
  assert.equal(sampledEntropyBits(Buffer.from([1, 2, 3, 4])), 2);
});
