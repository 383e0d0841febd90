/**
 * One-record frames made without copying equal what `encodeFrame` makes, and a frame log
 * holding frames appended in one writev reads them back after a reopen.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { FrameLog } from '../../core/frame-log.ts';
import { encodeFrame, verifyFrame, FrameFlag, RecordType } from '../../core/wire/frame.ts';
import { RecordFrameEncoder } from '../../core/wire/record-frame.ts';

before(loadHashing);

const DISK_BYTES = 2 ** 40 + 4096;
const cases = [
  { type: RecordType.WRITE as const, offset: 2 ** 33 + 512, data: randomBytes(4096) },
  { type: RecordType.WRITE as const, offset: 0, data: randomBytes(1 << 20) },
  { type: RecordType.ZERO as const, offset: 65536, lengthBytes: 3 << 20 },
  { type: RecordType.TRIM as const, offset: 2 ** 40, lengthBytes: 4096 },
];

test('a one-record frame equals encodeFrame for the same record, given as parts or written into a buffer', () => {
  const enc = new RecordFrameEncoder('web-01', 'disk0', DISK_BYTES);
  for (const [i, r] of cases.entries()) {
    const seq = 2 ** 36 + i;
    const timeMs = 1_790_000_000_123 + i;
    const length = r.type === RecordType.WRITE ? r.data.length : r.lengthBytes;
    const expected = encodeFrame({ machine: 'web-01', disk: 'disk0', firstSeq: seq, timeMs, diskBytes: DISK_BYTES, flags: FrameFlag.ORDERED, compress: false, records: [r] });
    const f = enc.encode(seq, timeMs, FrameFlag.ORDERED, r.type, r.offset, length, r.type === RecordType.WRITE ? r.data : undefined);
    assert.deepEqual(Buffer.concat([f.head, f.payload, f.checksum]), expected, `record ${i} as parts`);
    assert.equal(f.bytes, expected.length);
    assert.equal(enc.frameBytes(f.payload.length), expected.length);
    const into = Buffer.alloc(expected.length + 100, 0xee);
    const g = enc.encode(seq, timeMs, FrameFlag.ORDERED, r.type, r.offset, length, r.type === RecordType.WRITE ? r.data : undefined, { buf: into, at: 50 });
    assert.deepEqual(into.subarray(50, 50 + g.bytes), expected, `record ${i} written into a buffer`);
    assert.equal(verifyFrame(expected).lastSeq, seq);
  }
});

test('frames appended in one writev are read back, in order, after the log is reopened', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-record-frame-'));
  try {
    const enc = new RecordFrameEncoder('web-01', 'disk0', DISK_BYTES);
    const log = await FrameLog.open(dir, 'log', silentLogger);
    const buf = Buffer.alloc(1 << 16);
    let at = 0;
    const metas = [];
    for (let seq = 1; seq <= 5; seq++) {
      const f = enc.encode(seq, 1000 + seq, 0, RecordType.WRITE, seq * 4096, 4096, Buffer.alloc(4096, seq), { buf, at });
      at += f.bytes;
      metas.push(f);
    }
    log.appendPartsSync([buf.subarray(0, 10), buf.subarray(10, at)], metas);
    const big = enc.encode(6, 2000, 0, RecordType.WRITE, 0, 1 << 20, randomBytes(1 << 20));
    log.appendPartsSync([big.head, big.payload, big.checksum], [big]);
    assert.throws(() => log.appendPartsSync([big.head, big.payload, big.checksum], [big]), /expected 7/);
    await log.sync();
    log.close();
    const again = await FrameLog.open(dir, 'log', silentLogger);
    assert.deepEqual(again.pending().map((e) => [e.firstSeq, e.bytes]), [...metas.map((m) => [m.firstSeq, m.bytes]), [6, big.bytes]]);
    const frames = again.readMany(again.pending());
    assert.equal(verifyFrame(frames[2]).firstSeq, 3);
    assert.deepEqual(frames[5], Buffer.concat([big.head, big.payload, big.checksum]));
    again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
