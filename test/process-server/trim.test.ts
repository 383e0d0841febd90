import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadHashing } from '../../core/hash.ts';
import { decodeFrame, encodeFrame, recordData, RecordType } from '../../core/wire/frame.ts';
import { trimFrame } from '../../process-server/stream.ts';

before(loadHashing);

test('trimming a frame keeps the later records with their seqs and data', () => {
  const f = encodeFrame({
    machine: 'm', disk: 'disk0', firstSeq: 10, timeMs: 5, diskBytes: 1 << 20, flags: 4,
    records: [
      { type: RecordType.WRITE, offset: 0, data: Buffer.alloc(100, 1) },
      { type: RecordType.ZERO, offset: 0, lengthBytes: 50 },
      { type: RecordType.WRITE, offset: 512, data: Buffer.alloc(100, 3) },
      { type: RecordType.TAG, tag: { kind: 'crash', timeMs: 5 } },
    ],
  });
  const t = decodeFrame(trimFrame(f, 12));
  assert.equal(t.header.firstSeq, 12);
  assert.equal(t.header.lastSeq, 13);
  assert.equal(t.header.flags, 4);
  assert.deepEqual(recordData(t.records[0]), Buffer.alloc(100, 3));
  assert.equal(t.records[1].type, RecordType.TAG);
});
