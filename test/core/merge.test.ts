import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadHashing } from '../../core/hash.ts';
import { decodeFrame, encodeFrame, recordData, recordTag, FrameFlag, RecordType } from '../../core/wire/frame.ts';
import { mergeFrames, mergeable } from '../../core/wire/merge.ts';

before(loadHashing);

const frame = (firstSeq: number, fill: number, opts: { flags?: number; diskBytes?: number; timeMs?: number } = {}) => encodeFrame({
  machine: 'm', disk: 'disk0', firstSeq, timeMs: opts.timeMs ?? firstSeq, diskBytes: opts.diskBytes ?? 1 << 20, flags: opts.flags ?? FrameFlag.ORDERED,
  records: [
    { type: RecordType.WRITE, offset: firstSeq * 512, data: Buffer.alloc(4096, fill) },
    { type: RecordType.WRITE, offset: 8192, data: Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 7 + fill) & 0xff)) },
  ],
});

test('consecutive frames merge into one, records and compression kept as stored', () => {
  const a = frame(10, 1, { timeMs: 100 });
  const b = frame(12, 2, { timeMs: 200 });
  const c = encodeFrame({ machine: 'm', disk: 'disk0', firstSeq: 14, timeMs: 300, diskBytes: 1 << 20, flags: FrameFlag.ORDERED, records: [{ type: RecordType.TAG, tag: { kind: 'bookmark', timeMs: 300, name: 'x' } }] });
  const merged = decodeFrame(mergeFrames([a, b, c], 10));
  assert.deepEqual([merged.header.firstSeq, merged.header.lastSeq, merged.header.timeMs, merged.header.flags], [10, 14, 300, FrameFlag.ORDERED]);
  assert.deepEqual(merged.records.map((r) => r.seq), [10, 11, 12, 13, 14]);
  assert.equal(merged.records[0].compressed, true);
  assert.deepEqual(recordData(merged.records[2]), Buffer.alloc(4096, 2));
  assert.deepEqual(recordData(merged.records[3]), recordData(decodeFrame(b).records[1]));
  assert.equal(recordTag(merged.records[4]).name, 'x');
});

test('a merge can start inside the first frame', () => {
  const merged = decodeFrame(mergeFrames([frame(10, 1), frame(12, 2)], 11));
  assert.deepEqual(merged.records.map((r) => r.seq), [11, 12, 13]);
});

test('frames of another kind, disk size or with a gap do not merge', () => {
  const h = (f: Buffer) => decodeFrame(f).header;
  assert.equal(mergeable(h(frame(10, 1)), h(frame(12, 1))), true);
  assert.equal(mergeable(h(frame(10, 1)), h(frame(13, 1))), false);
  assert.equal(mergeable(h(frame(10, 1)), h(frame(12, 1, { flags: FrameFlag.RESYNC }))), false);
  assert.equal(mergeable(h(frame(10, 1)), h(frame(12, 1, { diskBytes: 1 << 21 }))), false);
  assert.throws(() => mergeFrames([frame(10, 1), frame(13, 1)], 10), /cannot follow/);
});
