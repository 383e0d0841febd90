import assert from 'node:assert/strict';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType, type BatchInput } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream, type SegmentLimits } from '../../master-target/disk-stream.ts';
import { buildImage } from '../../master-target/export.ts';
import { overlappingRecords } from '../../master-target/undo.ts';
import { generateBatches, hashesBySeq, sha256, tempDir } from './support.ts';

const MiB = 1024 * 1024;

async function openStream(dir: string, limits: Partial<SegmentLimits> = {}): Promise<DiskStream> {
  return DiskStream.open(join(dir, 'streams', 'm1', 'disk0'), 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000, ...limits }, silentLogger);
}

async function imageHash(stream: DiskStream, seq: number, tmp: string): Promise<string> {
  const img = await buildImage(stream, seq, tmp);
  try {
    const bytes = await readFile(img.path);
    assert.equal(bytes.length, img.sizeBytes);
    return sha256(bytes);
  } finally {
    await unlink(img.path);
  }
}


before(loadHashing);

describe('undo overlap detection', () => {
  it('marks exactly the records whose ranges intersect another', () => {
    const rec = (offset: number, lengthBytes: number) => ({ seq: 0, type: RecordType.ZERO, offset, lengthBytes, stored: undefined as never });
    const set = overlappingRecords([rec(0, 10), rec(20, 5), rec(9, 2), rec(30, 1), rec(100, 50), rec(120, 1)]);
    assert.deepEqual([...set].sort((a, b) => a - b), [0, 2, 4, 5]);
  });
});

describe('journal apply and point-in-time export', () => {
  let dir: { path: string; remove(): Promise<void> };
  before(async () => (dir = await tempDir('journal')));
  after(() => dir.remove());

  it('rebuilds the exact disk at every seq, across overlaps, zero, trim, growth and reopen', async () => {
    const batches = generateBatches({ seed: 7, batches: 24, diskBytes: 2 * MiB, growToBytes: 4 * MiB, maxRecords: 8, maxWriteBytes: 200 * 1024 });
    const hashes = hashesBySeq(batches, 4 * MiB);
    const tmp = join(dir.path, 'tmp');
    await import('node:fs/promises').then((fs) => fs.mkdir(tmp, { recursive: true }));
    let stream = await openStream(dir.path, { segmentBytes: 256 * 1024 });
    for (const b of batches) {
      const r = await stream.apply(prepareBatch(encodeFrame(b)));
      assert.equal(r.status, 'applied');
    }
    const last = hashes.length - 1;
    assert.equal(stream.nextSeq, last + 1);
    assert.ok((await readdir(join(dir.path, 'streams/m1/disk0/journal'))).length > 3, 'several segments');
    for (let seq = 0; seq <= last; seq++) assert.equal(await imageHash(stream, seq, tmp), hashes[seq], `image at seq ${seq}`);

    // A duplicate changes nothing; a gap is refused.
    assert.equal((await stream.apply(prepareBatch(encodeFrame(batches[3])))).status, 'duplicate');
    const gap = { ...batches[0], firstSeq: last + 5 };
    assert.deepEqual(await stream.apply(prepareBatch(encodeFrame(gap))), { status: 'gap', nextSeq: last + 1 });

    // Reopen: same position, points and images.
    const pointsBefore = stream.points.list();
    await stream.close();
    stream = await openStream(dir.path, { segmentBytes: 256 * 1024 });
    assert.equal(stream.nextSeq, last + 1);
    assert.deepEqual(stream.points.list(), pointsBefore);
    for (const seq of [0, 1, Math.floor(last / 2), last]) assert.equal(await imageHash(stream, seq, tmp), hashes[seq]);
    await stream.close();
  });

  it('lists TAG points and every boundary of ORDERED batches', async () => {
    const d = await tempDir('points');
    try {
      const batches = generateBatches({ seed: 11, batches: 30, diskBytes: MiB, maxRecords: 6, maxWriteBytes: 8192 });
      const stream = await openStream(d.path);
      for (const b of batches) await stream.apply(prepareBatch(encodeFrame(b)));
      const expected = new Map<number, string>();
      for (const b of batches) {
        b.records.forEach((r, i) => {
          if ((b.flags ?? 0) & 4) expected.set(b.firstSeq + i, 'crash');
        });
        b.records.forEach((r, i) => {
          if (r.type === RecordType.TAG) expected.set(b.firstSeq + i, r.tag.kind);
        });
      }
      const listed = stream.points.list();
      assert.deepEqual(listed.map((p) => [p.seq, p.kind]), [...expected].sort((a, b) => a[0] - b[0]));
      assert.ok(listed.every((p) => p.id === String(p.seq) && p.consistent));
      const page = stream.points.list({ sinceSeq: listed[2].seq, limit: 3 });
      assert.deepEqual(page.map((p) => p.seq), listed.slice(3, 6).map((p) => p.seq));
      await stream.close();
    } finally {
      await d.remove();
    }
  });

  it('retention drops whole old segments and keeps the points inside the window exact', async () => {
    const d = await tempDir('retention');
    try {
      const stepMs = 60_000;
      const startMs = Date.UTC(2030, 0, 1);
      const batches = generateBatches({ seed: 5, batches: 60, diskBytes: 2 * MiB, maxRecords: 5, maxWriteBytes: 64 * 1024, startMs, stepMs });
      const hashes = hashesBySeq(batches, 2 * MiB);
      const stream = await openStream(d.path, { segmentBytes: 128 * 1024 });
      for (const b of batches) await stream.apply(prepareBatch(encodeFrame(b)), b.timeMs);
      const journalDir = join(d.path, 'streams/m1/disk0/journal');
      const before = (await readdir(journalDir)).length;
      const cutoffMs = startMs + 30 * stepMs;
      const dropped = await stream.retain(cutoffMs);
      assert.ok(dropped > 0, 'some segments dropped');
      assert.equal((await readdir(journalDir)).length, before - dropped);
      // Every point of a batch inside the window is still listed and exact.
      const listed = stream.points.list({ notBeforeMs: cutoffMs });
      const inWindow = batches.filter((b) => b.timeMs >= cutoffMs + stepMs);
      for (const b of inWindow) {
        b.records.forEach((r, i) => {
          const seq = b.firstSeq + i;
          if (r.type === RecordType.TAG || (b.flags ?? 0) & 4) assert.ok(listed.some((p) => p.seq === seq), `point ${seq} listed`);
        });
      }
      assert.ok(listed[0].seq >= stream.oldestSeq);
      const tmp = join(d.path, 'tmp');
      await import('node:fs/promises').then((fs) => fs.mkdir(tmp, { recursive: true }));
      for (const p of listed) assert.equal(await imageHash(stream, p.seq, tmp), hashes[p.seq], `point ${p.seq}`);
      await assert.rejects(buildImage(stream, stream.oldestSeq - 1, tmp), /outside/);
      await stream.close();
    } finally {
      await d.remove();
    }
  });
});
