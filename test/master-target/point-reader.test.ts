import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType, type BatchInput } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream, type SegmentLimits } from '../../master-target/disk-stream.ts';
import { UndoEncoding } from '../../master-target/journal-segment.ts';
import type { PointInTimeReader } from '../../master-target/point-reader.ts';
import { UndoIndex } from '../../master-target/undo-index.ts';
import { generateBatches, hashesBySeq, int, rng, sha256, tempDir } from './support.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

async function openStream(dir: string, limits: Partial<SegmentLimits> = {}): Promise<DiskStream> {
  return DiskStream.open(join(dir, 'streams', 'm1', 'disk0'), 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000, ...limits }, silentLogger);
}


async function readAll(reader: PointInTimeReader, chunkBytes = 1 * MiB): Promise<Buffer> {
  const out = Buffer.alloc(reader.sizeBytes);
  for (let at = 0; at < out.length; at += chunkBytes) await reader.readInto(out.subarray(at, Math.min(out.length, at + chunkBytes)), at);
  return out;
}

before(loadHashing);

describe('undo index', () => {
  it('finds, for every byte, the oldest item newer than the point, like a brute-force scan', () => {
    const r = rng(9);
    const index = new UndoIndex();
    const items: Array<{ seq: number; offset: number; lengthBytes: number }> = [];
    let seq = 1;
    for (let i = 0; i < 3000; i++) {
      seq += int(r, 0, 2);
      const lengthBytes = int(r, 1, 160 * 1024);
      const offset = int(r, 0, MiB);
      items.push({ seq, offset, lengthBytes });
      index.add({ seq, offset, lengthBytes, encoding: UndoEncoding.ZERO, segment: 1, at: i, itemBytes: 1 });
    }
    const check = (from: number) => {
      for (let q = 0; q < 60; q++) {
        const point = int(r, from - 1, seq);
        const offset = int(r, 0, MiB);
        const length = int(r, 1, 200 * 1024);
        const got = new Int32Array(length).fill(-1);
        for (const p of index.lookup(point, offset, length)) {
          for (let b = p.start; b < p.end; b++) {
            assert.equal(got[b - offset], -1, 'pieces are disjoint');
            got[b - offset] = p.item.at;
          }
        }
        const want = new Int32Array(length).fill(-1);
        // Newest first, each item overwriting: the oldest one is left.
        for (let k = items.length - 1; k >= 0; k--) {
          const it = items[k];
          if (it.seq <= point || it.seq < from) break;
          const s = Math.max(offset, it.offset);
          const t = Math.min(offset + length, it.offset + it.lengthBytes);
          if (s < t) want.fill(k, s - offset, t - offset);
        }
        assert.ok(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `point ${point}, ${length} bytes at ${offset}`);
      }
    };
    check(1);
    // Rollback of the newest items, then retention of the oldest.
    const cut = items[2500].seq;
    index.removeFrom(cut);
    while (items.length && items.at(-1)!.seq >= cut) items.pop();
    seq = items.at(-1)!.seq;
    check(1);
    const drop = items[1000].seq;
    index.dropBefore(drop);
    check(drop);
    assert.equal(index.size, items.filter((it) => it.seq >= drop).length);
  });
});

describe('point-in-time readers', () => {
  let dir: { path: string; remove(): Promise<void> };
  before(async () => (dir = await tempDir('reader')));
  after(() => dir.remove());

  it('read the exact disk at every seq while batches keep being applied', async () => {
    const batches = generateBatches({ seed: 21, batches: 30, diskBytes: 512 * 1024, growToBytes: MiB, maxRecords: 6, maxWriteBytes: 96 * 1024 });
    const hashes = hashesBySeq(batches, MiB);
    const stream = await openStream(join(dir.path, 'concurrent'), { segmentBytes: 128 * 1024 });
    const r = rng(5);
    interface Open {
      reader: PointInTimeReader;
      image: Buffer;
      at: number;
    }
    const open: Open[] = [];
    const start = (seq: number) => {
      const reader = stream.openReader(seq);
      open.push({ reader, image: Buffer.alloc(reader.sizeBytes), at: 0 });
    };
    let verified = 0;
    /** Reads the next piece of every open reader; checks and closes the ones that are done. */
    const step = async () => {
      for (const o of [...open]) {
        const n = Math.min(int(r, 1, 160 * 1024), o.image.length - o.at);
        if (n > 0) {
          await o.reader.readInto(o.image.subarray(o.at, o.at + n), o.at);
          o.at += n;
        }
        if (o.at >= o.image.length) {
          assert.equal(sha256(o.image), hashes[o.reader.seq], `image at seq ${o.reader.seq}`);
          await o.reader.close();
          open.splice(open.indexOf(o), 1);
          verified++;
        }
      }
    };
    start(0);
    for (const b of batches) {
      let applied = false;
      const applying = stream.apply(prepareBatch(encodeFrame(b))).then((res) => {
        assert.equal(res.status, 'applied');
        applied = true;
      });
      // Reads run between the apply's steps (journal write, replica writes, commit).
      while (!applied) {
        await step();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await applying;
      for (let seq = b.firstSeq; seq < b.firstSeq + b.records.length; seq++) start(seq);
    }
    while (open.length) await step();
    assert.equal(verified, hashes.length, 'a reader at every seq');
    assert.equal(stream.openReaders, 0);
    assert.ok((await readdir(join(dir.path, 'concurrent/streams/m1/disk0/journal'))).length > 3, 'several segments');
    await stream.close();
  });

  it('keep the segments they need from retention until closed', async () => {
    const stepMs = 60_000;
    const startMs = Date.UTC(2030, 0, 1);
    const batches = generateBatches({ seed: 8, batches: 40, diskBytes: MiB, maxRecords: 5, maxWriteBytes: 64 * 1024, startMs, stepMs });
    const hashes = hashesBySeq(batches, MiB);
    const stream = await openStream(join(dir.path, 'retention'), { segmentBytes: 64 * 1024 });
    const journalDir = join(dir.path, 'retention/streams/m1/disk0/journal');
    const half = batches.length / 2;
    for (const b of batches.slice(0, half)) await stream.apply(prepareBatch(encodeFrame(b)), b.timeMs);
    const early = batches[3].firstSeq;
    const earlyReader = stream.openReader(early);
    // A reader at the newest seq needs what later batches write into the current segment.
    const latestSeq = stream.nextSeq - 1;
    const latestReader = stream.openReader(latestSeq);
    for (const b of batches.slice(half)) await stream.apply(prepareBatch(encodeFrame(b)), b.timeMs);
    const segments = (await readdir(journalDir)).length;
    const future = startMs + 1000 * stepMs;
    assert.equal(await stream.retain(future), 0, 'nothing deleted while the early reader is open');
    assert.equal((await readdir(journalDir)).length, segments);
    assert.equal(stream.oldestSeq, 0);
    assert.equal(sha256(await readAll(earlyReader, 100_000)), hashes[early]);
    await earlyReader.close();
    const dropped = await stream.retain(future);
    assert.ok(dropped > 0, 'the early reader closed: old segments go');
    assert.ok(stream.oldestSeq <= latestSeq, 'but not those the latest reader needs');
    assert.equal(sha256(await readAll(latestReader)), hashes[latestSeq]);
    await latestReader.close();
    assert.ok((await stream.retain(future)) > 0);
    assert.throws(() => stream.openReader(0), /outside/);
    const newest = stream.nextSeq - 1;
    const last = stream.openReader(newest);
    assert.equal(sha256(await readAll(last)), hashes[newest]);
    await last.close();
    await stream.close();
  });

  it('read the first byte of a 16 GiB disk in well under a second, as fast as of a 1 GiB disk', async () => {
    const timings: number[] = [];
    for (const diskBytes of [GiB, 16 * GiB]) {
      const stream = await openStream(join(dir.path, `big-${diskBytes}`));
      const block = (fill: number) => Buffer.alloc(64 * 1024, fill);
      const frame = (firstSeq: number, fill: number) =>
        encodeFrame({
          machine: 'm1',
          disk: 'disk0',
          firstSeq,
          timeMs: Date.now(),
          diskBytes,
          flags: 0,
          records: [
            { type: RecordType.WRITE, offset: 0, data: block(fill) },
            { type: RecordType.WRITE, offset: diskBytes - 64 * 1024, data: block(fill) },
          ],
          compress: false,
        });
      await stream.apply(prepareBatch(frame(1, 1)));
      await stream.apply(prepareBatch(frame(3, 2)));
      const started = performance.now();
      const reader = stream.openReader(2);
      const first = await reader.read(0, 1);
      timings.push(performance.now() - started);
      assert.equal(first[0], 1);
      assert.equal(reader.sizeBytes, diskBytes);
      assert.deepEqual(await reader.read(diskBytes - 4096, 4096), Buffer.alloc(4096, 1));
      assert.deepEqual(await reader.read(GiB / 2, 4096), Buffer.alloc(4096));
      const zero = stream.openReader(0);
      assert.equal(zero.sizeBytes, 0);
      await zero.close();
      await reader.close();
      await stream.close();
    }
    assert.ok(timings[1] < 1000, `first byte of 16 GiB in ${timings[1].toFixed(1)} ms`);
    assert.ok(timings[1] < timings[0] + 200, `16 GiB (${timings[1].toFixed(1)} ms) is not slower than 1 GiB (${timings[0].toFixed(1)} ms)`);
  });
});
