import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadHashing, xxh64Of } from '../../core/hash.ts';
import { FrameError } from '../../core/errors.ts';
import {
  decodeFrame, encodeFrame, recordData, recordTag, verifyFrame, readFrameHeader,
  FrameFlag, RecordType, CHECKSUM_BYTES, FRAME_HEADER_BYTES, type BatchInput,
} from '../../core/wire/frame.ts';

before(loadHashing);

function sample(): BatchInput {
  return {
    machine: 'web-01',
    disk: 'disk0',
    firstSeq: 41,
    timeMs: 1_790_000_000_123,
    diskBytes: 1 << 20,
    flags: FrameFlag.INITIAL_SYNC,
    records: [
      { type: RecordType.WRITE, offset: 0, data: Buffer.alloc(65536, 'abc') },
      { type: RecordType.WRITE, offset: 65536, data: randomBytes(4096) },
      { type: RecordType.ZERO, offset: 131072, lengthBytes: 65536 },
      { type: RecordType.TRIM, offset: 200000, lengthBytes: 512 },
      { type: RecordType.TAG, tag: { kind: 'app', timeMs: 1_790_000_000_000, name: 'nightly' } },
    ],
  };
}

function expectFault(buf: Buffer, reason: string, pattern: RegExp): void {
  assert.throws(() => decodeFrame(buf), (e: unknown) => {
    assert.ok(e instanceof FrameError, `expected FrameError, got ${e}`);
    assert.equal(e.reason, reason);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a frame round-trips every record type', () => {
  const input = sample();
  const buf = encodeFrame(input);
  const { header, records } = decodeFrame(buf);
  assert.equal(header.machine, 'web-01');
  assert.equal(header.disk, 'disk0');
  assert.equal(header.firstSeq, 41);
  assert.equal(header.lastSeq, 45);
  assert.equal(header.timeMs, input.timeMs);
  assert.equal(header.diskBytes, 1 << 20);
  assert.equal(header.flags, FrameFlag.INITIAL_SYNC);
  assert.equal(header.totalBytes, buf.length);
  assert.deepEqual(records.map((r) => r.seq), [41, 42, 43, 44, 45]);
  assert.equal(records[0].compressed, true, 'a repetitive block is compressed');
  assert.ok(records[0].payload.length < 65536);
  assert.deepEqual(recordData(records[0]), Buffer.alloc(65536, 'abc'));
  assert.equal(records[1].compressed, false, 'random data is sent as is');
  assert.deepEqual(recordData(records[1]), (input.records[1] as { data: Buffer }).data);
  assert.equal(records[2].type, RecordType.ZERO);
  assert.equal(records[2].lengthBytes, 65536);
  assert.equal(records[3].type, RecordType.TRIM);
  assert.deepEqual(recordTag(records[4]), { kind: 'app', timeMs: 1_790_000_000_000, name: 'nightly' });
});

test('compression can be switched off', () => {
  const buf = encodeFrame({ ...sample(), compress: false });
  const { records } = decodeFrame(buf);
  assert.equal(records[0].compressed, false);
  assert.equal(records[0].payload.length, 65536);
});

test('a truncated frame is refused and says how much it has', () => {
  const buf = encodeFrame(sample());
  expectFault(buf.subarray(0, 20), 'truncated', /20 bytes.*header alone needs 52/);
  expectFault(buf.subarray(0, buf.length - 1), 'truncated', new RegExp(`${buf.length - 1} of ${buf.length} bytes`));
});

test('a flipped bit anywhere fails the checksum', () => {
  const buf = encodeFrame(sample());
  for (const at of [FRAME_HEADER_BYTES + 3, FRAME_HEADER_BYTES + 40, buf.length - CHECKSUM_BYTES - 1, buf.length - 1]) {
    const bad = Buffer.from(buf);
    bad[at] ^= 0x10;
    expectFault(bad, 'bad-checksum', /checksum mismatch/);
  }
});

test('an unknown version and a wrong magic are refused by name', () => {
  const buf = encodeFrame(sample());
  const v2 = Buffer.from(buf);
  v2.writeUInt16BE(2, 4);
  expectFault(v2, 'unsupported-version', /version 2.*reads version 1/);
  const alien = Buffer.from(buf);
  alien.write('HTTP', 0, 'latin1');
  expectFault(alien, 'bad-magic', /not a tidemark frame/);
});

test('extra bytes after a frame are refused', () => {
  const buf = encodeFrame(sample());
  expectFault(Buffer.concat([buf, Buffer.from([0])]), 'malformed', /unexpected bytes/);
});

test('an inconsistent sequence range is refused even before the checksum', () => {
  const buf = encodeFrame(sample());
  buf.writeBigUInt64BE(99n, 16);
  assert.throws(() => readFrameHeader(buf), /sequence range 41..99/);
});

test('a record beyond the disk is refused', () => {
  const input = sample();
  input.records = [{ type: RecordType.ZERO, offset: (1 << 20) - 100, lengthBytes: 200 }];
  expectFault(encodeFrame(input), 'malformed', /beyond the disk/);
});

test('a compressed payload that lies about its size is refused', () => {
  const input = sample();
  input.records = [{ type: RecordType.WRITE, offset: 0, data: Buffer.alloc(8192, 1) }];
  const buf = encodeFrame(input);
  const { records } = decodeFrame(buf);
  assert.ok(records[0].compressed);
  // Rewrite the record's logical length and re-seal the frame: structure is valid, content is not.
  const recAt = FRAME_HEADER_BYTES + 'web-01'.length + 'disk0'.length;
  buf.writeUInt32BE(4096, recAt + 16);
  xxh64Of(buf.subarray(0, buf.length - CHECKSUM_BYTES)).copy(buf, buf.length - CHECKSUM_BYTES);
  const again = decodeFrame(buf);
  assert.throws(() => recordData(again.records[0]), (e: unknown) => e instanceof FrameError && /declares 8192 bytes/.test(e.message));
});

test('verifyFrame checks without parsing records', () => {
  const buf = encodeFrame(sample());
  assert.equal(verifyFrame(buf).recordCount, 5);
});
