import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadHashing } from '../../core/hash.ts';
import { decodeFrame, decodeRecords, encodeFrame, FRAME_VERSION, RecordType, verifyFrame } from '../../core/wire/frame.ts';
import { FrameWriter } from '../../core/wire/frame-writer.ts';

before(loadHashing);

const written = randomBytes(8192);
const input = {
  machine: 'web-01', disk: 'disk0', firstSeq: 7, timeMs: 1_790_000_000_123, diskBytes: 1 << 20, flags: 1, compress: false,
  records: [
    { type: RecordType.WRITE as const, offset: 4096, data: written },
    { type: RecordType.ZERO as const, offset: 65536, lengthBytes: 4096 },
    { type: RecordType.TAG as const, tag: { kind: 'app' as const, timeMs: 1_790_000_000_000 } },
  ],
};

test('a frame written record by record has the bytes encodeFrame gives, whatever was dropped or retyped on the way', () => {
  const w = new FrameWriter(Buffer.alloc(64 * 1024, 0xee), { version: FRAME_VERSION, flags: 1, firstSeq: 7, timeMs: input.timeMs, diskBytes: input.diskBytes, machine: 'web-01', disk: 'disk0' });
  w.beginRecord(RecordType.ZERO, true, 4096, 8192);
  w.put(written);
  w.retype(RecordType.WRITE, false);
  w.endRecord();
  w.beginRecord(RecordType.WRITE, false, 65536, 4096);
  w.put(Buffer.alloc(4096));
  w.cancelRecord();
  w.record(RecordType.ZERO, false, 65536, 4096);
  w.record(RecordType.TAG, false, 0, 0, Buffer.from(JSON.stringify(input.records[2].tag)));
  const frame = w.finish();
  assert.deepEqual(frame, encodeFrame(input));
});

test('decodeRecords of a verified frame gives what decodeFrame gives', () => {
  const frame = encodeFrame({ ...input, compress: true });
  assert.deepEqual(decodeRecords(frame, verifyFrame(frame)), decodeFrame(frame).records);
});

test('finish refuses an empty frame and an open record', () => {
  const w = new FrameWriter(Buffer.alloc(1024), { version: FRAME_VERSION, flags: 0, firstSeq: 1, timeMs: 0, diskBytes: 4096, machine: 'm', disk: 'd' });
  assert.throws(() => w.finish(), /at least one record/);
  w.beginRecord(RecordType.ZERO, false, 0, 4096);
  assert.throws(() => w.finish(), /still open/);
});
