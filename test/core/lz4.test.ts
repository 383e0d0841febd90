import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { compressIfWorthwhile, compressInto, decompress, decompressInto } from '../../core/lz4.ts';

const text = Buffer.from('2030-01-01T00:00:00Z server replication disk block write read config value\n'.repeat(900)).subarray(0, 65536);

test('compressInto writes what compressIfWorthwhile returns, in place, or nothing where compression does not pay', () => {
  for (const data of [text, text.subarray(0, 5000), randomBytes(65536), randomBytes(3000), Buffer.alloc(65536)]) {
    const expected = compressIfWorthwhile(data);
    const out = Buffer.alloc(70_000, 0xee);
    const n = compressInto(data, out, 13);
    if (!expected) {
      assert.equal(n, undefined);
      assert.ok(out.every((b) => b === 0xee), 'nothing written');
    } else {
      assert.equal(n, expected.length);
      assert.deepEqual(out.subarray(13, 13 + n!), expected);
      assert.equal(out[12], 0xee);
      assert.equal(out[13 + n!], 0xee);
    }
  }
});

test('compressInto writes nothing when the result would not fit', () => {
  const out = Buffer.alloc(100, 0xee);
  assert.equal(compressInto(text, out, 0), undefined);
  assert.ok(out.every((b) => b === 0xee));
});

test('decompressInto restores the bytes in place and refuses what does not decompress to the length', () => {
  const packed = compressIfWorthwhile(text)!;
  const out = Buffer.alloc(text.length + 10, 0xee);
  decompressInto(packed, text.length, out, 5);
  assert.deepEqual(out.subarray(5, 5 + text.length), text);
  assert.equal(out[4], 0xee);
  assert.equal(out[5 + text.length], 0xee);
  assert.throws(() => decompressInto(packed, text.length - 1, out, 0), /declares 65536 bytes/);
  assert.throws(() => decompressInto(packed, text.length, Buffer.alloc(100), 0), /no room/);
  const broken = Buffer.from(packed.subarray(0, 40));
  assert.throws(() => decompressInto(broken, text.length, out, 0), (e: unknown) => e instanceof Error && e.message.length > 0);
  assert.throws(() => decompress(broken, text.length), (e: unknown) => e instanceof Error && /LZ4/.test(e.message));
  // The module is still sound after a refusal.
  decompressInto(packed, text.length, out, 0);
  assert.deepEqual(out.subarray(0, text.length), text);
});

test('short payloads of varied bytes are not compressed; text, zeros and few distinct values are', async () => {
  const { deflateSync } = await import('node:zlib');
  const deflated = deflateSync(Buffer.from(Array.from({ length: 4000 }, (_, i) => `line ${i} of a log, value ${(i * 7919) % 1000}\n`).join(''))).subarray(0, 4096);
  for (const data of [randomBytes(4096), randomBytes(1024), randomBytes(12 * 1024), deflated]) {
    assert.equal(compressIfWorthwhile(data), undefined, `${data.length} bytes of high entropy`);
    assert.equal(compressInto(data, Buffer.alloc(20_000), 0), undefined);
  }
  const fourValues = Buffer.from(randomBytes(4096).map((b) => b & 0x03));
  for (const data of [text.subarray(0, 4096), Buffer.alloc(4096), fourValues]) {
    const packed = compressIfWorthwhile(data);
    assert.ok(packed && packed.length <= data.length * 7 / 8, 'compressed by at least an eighth');
    assert.deepEqual(decompress(packed, data.length), data);
  }
});

test('compression that saves less than an eighth is not kept', () => {
  // A 64 KiB payload passes the sample test when its middle compresses; the rest is random.
  const data = Buffer.concat([randomBytes(30 * 1024), text.subarray(0, 6 * 1024), randomBytes(28 * 1024)]);
  assert.equal(compressIfWorthwhile(data), undefined);
  assert.equal(compressInto(data, Buffer.alloc(70_000), 0), undefined);
  const half = Buffer.concat([randomBytes(16 * 1024), text.subarray(0, 48 * 1024)]);
  assert.ok(compressIfWorthwhile(half), 'three quarters text still compresses');
});
