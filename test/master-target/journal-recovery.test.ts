import assert from 'node:assert/strict';
import { cp, open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHashing, xxh64Of } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, FrameFlag, RecordType, type BatchInput } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';
import { buildImage } from '../../master-target/export.ts';
import { JOURNAL_VERSION } from '../../master-target/journal-segment.ts';
import { referenceHash, sha256, tempDir } from './support.ts';

const MiB = 1024 * 1024;
const MAX_BYTES = 4 * MiB;

let dir: { path: string; remove(): Promise<void> };
before(async () => {
  await loadHashing();
  dir = await tempDir('journal-recovery');
});
after(() => dir.remove());

/** Three batches of 64 KiB writes that do not overlap within a batch (each gets a RESULT), the second rewriting the first's blocks. */
function batches(): BatchInput[] {
  const out: BatchInput[] = [];
  let seq = 1;
  for (let b = 0; b < 3; b++) {
    const records = Array.from({ length: 8 }, (_, i) => ({ type: RecordType.WRITE as const, offset: ((i * 3 + b) % 40) * 64 * 1024, data: Buffer.alloc(64 * 1024, 1 + b * 8 + i) }));
    out.push({ machine: 'm1', disk: 'disk0', firstSeq: seq, timeMs: Date.UTC(2030, 0, 1) + b * 1000, diskBytes: MAX_BYTES, flags: FrameFlag.ORDERED, records });
    seq += records.length;
  }
  return out;
}

function openStream(path: string, log = silentLogger): Promise<DiskStream> {
  return DiskStream.open(path, 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 }, log);
}

async function imageHash(stream: DiskStream, seq: number): Promise<string> {
  const img = await buildImage(stream, seq, dir.path);
  try {
    return sha256(await readFile(img.path));
  } finally {
    await unlink(img.path);
  }
}

/** Applies `bs` and copies the stream directory while the stream is still open: what a kill -9 leaves. */
async function crashCopy(name: string, bs: BatchInput[]): Promise<string> {
  const live = join(dir.path, `${name}-live`);
  const s = await openStream(live);
  for (const b of bs) assert.equal((await s.apply(prepareBatch(encodeFrame(b)))).status, 'applied');
  const copy = join(dir.path, name);
  await cp(live, copy, { recursive: true });
  await s.close();
  return copy;
}

/** Rewrites the version of every segment header (and its checksum). */
async function setVersion(streamDir: string, version: number): Promise<void> {
  for (const name of await readdir(join(streamDir, 'journal'))) {
    const fh = await open(join(streamDir, 'journal', name), 'r+');
    try {
      const fixed = Buffer.alloc(12);
      await fh.read(fixed, 0, 12, 0);
      const header = Buffer.alloc(fixed.readUInt32BE(8));
      await fh.read(header, 0, header.length, 0);
      header.writeUInt16BE(version, 4);
      xxh64Of(header.subarray(0, header.length - 8)).copy(header, header.length - 8);
      await fh.write(header, 0, header.length, 0);
    } finally {
      await fh.close();
    }
  }
}

describe('journal recovery without a COMMIT (format 3)', () => {
  it('commits an acknowledged batch whose COMMIT was never written', async () => {
    const bs = batches();
    const path = await crashCopy('acked', bs);
    const messages: string[] = [];
    const s = await openStream(path, { ...silentLogger, info: (msg: string) => void messages.push(msg) });
    try {
      const last = bs.at(-1)!.firstSeq + bs.at(-1)!.records.length - 1;
      assert.equal(s.nextSeq, last + 1, 'the acknowledged batch is there');
      assert.ok(messages.includes('batch committed at recovery'));
      for (const seq of [0, bs[1].firstSeq - 1, bs[2].firstSeq - 1, last]) assert.equal(await imageHash(s, seq), referenceHash(bs, seq, MAX_BYTES), `point ${seq}`);
    } finally {
      await s.close();
    }
    // Committed for good: a second start has nothing to recover.
    const again: string[] = [];
    const s2 = await openStream(path, { ...silentLogger, info: (msg: string) => void again.push(msg) });
    await s2.close();
    assert.ok(!again.includes('batch committed at recovery'));
  });

  it('rolls back a batch whose replica writes did not all land', async () => {
    const bs = batches();
    const path = await crashCopy('lost', bs);
    // One block of the last batch never reached the replica: it still holds the older bytes.
    const rec = bs[2].records[5] as { offset: number };
    const fh = await open(join(path, 'replica.img'), 'r+');
    const older = Buffer.alloc(4096, 0x5a);
    await fh.write(older, 0, older.length, rec.offset);
    await fh.close();
    const s = await openStream(path);
    try {
      assert.equal(s.nextSeq, bs[2].firstSeq, 'the last batch is gone');
      assert.equal(sha256(await readFile(join(path, 'replica.img'))), referenceHash(bs, bs[2].firstSeq - 1, MAX_BYTES), 'the replica is back at the batch before');
      assert.equal(await imageHash(s, bs[1].firstSeq - 1), referenceHash(bs, bs[1].firstSeq - 1, MAX_BYTES));
      // The process server resends it.
      assert.equal((await s.apply(prepareBatch(encodeFrame(bs[2])))).status, 'applied');
      assert.equal(await imageHash(s, s.nextSeq - 1), referenceHash(bs, s.nextSeq - 1, MAX_BYTES));
    } finally {
      await s.close();
    }
  });

  it('opens version 2 segments and appends to a new version 3 segment; refuses an unknown version with a clear error', async () => {
    const bs = batches();
    const path = join(dir.path, 'v2');
    const s0 = await openStream(path);
    for (const b of bs.slice(0, 2)) await s0.apply(prepareBatch(encodeFrame(b)));
    await s0.close();
    await setVersion(path, 2);
    const s = await openStream(path);
    try {
      assert.equal(await imageHash(s, bs[1].firstSeq - 1), referenceHash(bs, bs[1].firstSeq - 1, MAX_BYTES));
      assert.equal((await s.apply(prepareBatch(encodeFrame(bs[2])))).status, 'applied');
      const names = (await readdir(join(path, 'journal'))).sort();
      assert.equal(names.length, 2, 'a new segment for the new format');
      const head = Buffer.alloc(6);
      const fh = await open(join(path, 'journal', names[1]), 'r');
      await fh.read(head, 0, 6, 0);
      await fh.close();
      assert.equal(head.readUInt16BE(4), JOURNAL_VERSION);
      for (const seq of [bs[1].firstSeq - 1, s.nextSeq - 1]) assert.equal(await imageHash(s, seq), referenceHash(bs, seq, MAX_BYTES));
    } finally {
      await s.close();
    }
    await setVersion(path, 9);
    await assert.rejects(openStream(path), /has version 9; this build reads versions 2 and 3/);
  });
});
