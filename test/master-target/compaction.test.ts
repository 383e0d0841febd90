import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, type BatchInput } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';
import { buildImage } from '../../master-target/export.ts';
import { thin, type TierPolicy } from '../../master-target/retention-tiers.ts';
import { COMPACT_SEGMENT_BYTES, compactionBatches, int, referenceHash, rng, sha256, tempDir } from './support.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/compact-loop.ts', import.meta.url));
const MAX_BYTES = 512 * 1024;
const END_MS = Date.UTC(2030, 0, 1, 12);
const NOW_MS = END_MS + 60_000;
const POLICY: TierPolicy = { fullSeconds: 600 };

let dir: { path: string; remove(): Promise<void> };
before(async () => {
  await loadHashing();
  dir = await tempDir('compaction');
});
after(() => dir.remove());

function openStream(path: string): Promise<DiskStream> {
  return DiskStream.open(path, 'm1', 'disk0', { segmentBytes: COMPACT_SEGMENT_BYTES, segmentMaxAgeMs: 24 * 3600_000 }, silentLogger);
}

async function build(path: string, batches: BatchInput[]): Promise<DiskStream> {
  const s = await openStream(path);
  for (const b of batches) assert.equal((await s.apply(prepareBatch(encodeFrame(b)), b.timeMs)).status, 'applied');
  return s;
}

async function journalFiles(path: string): Promise<string[]> {
  return (await readdir(join(path, 'journal'))).sort();
}

async function journalBytes(path: string): Promise<number> {
  let n = 0;
  for (const f of await journalFiles(path)) n += (await stat(join(path, 'journal', f))).size;
  return n;
}

/** Exports the disk at each seq of `seqs` and compares it with the reference. */
async function checkPoints(stream: DiskStream, batches: BatchInput[], seqs: number[], what: string): Promise<void> {
  const tmp = join(dir.path, 'images');
  await mkdir(tmp, { recursive: true });
  for (const seq of seqs) {
    const img = await buildImage(stream, seq, tmp);
    try {
      assert.equal(sha256(await readFile(img.path)), referenceHash(batches, seq, MAX_BYTES), `${what}: point ${seq}`);
    } finally {
      await unlink(img.path);
    }
  }
}

/** Every `step`-th of `seqs`, with the first and the last. */
function sample(seqs: number[], step: number): number[] {
  return [...new Set([seqs[0], ...seqs.filter((_, i) => i % step === 0), seqs.at(-1)!])];
}

describe('journal compaction', () => {
  it('keeps every kept point byte for byte, drops the thinned ones, and reclaims space, also after a restart', async (t) => {
    const batches = compactionBatches(5, END_MS);
    const path = join(dir.path, 'exact');
    let stream = await build(path, batches);
    const kept = thin(stream.points.list(), stream.points, NOW_MS, POLICY);
    const all = stream.points.list().length;
    const before = await journalBytes(path);
    const r = await stream.compact(POLICY, NOW_MS);
    const afterBytes = await journalBytes(path);
    t.diagnostic(`points ${all} -> kept ${kept.length}; segments compacted ${r.segments}; journal ${before} -> ${afterBytes} bytes (${((afterBytes / before) * 100).toFixed(0)}%)`);
    assert.ok(r.segments > 0, 'some segment was compacted');
    assert.equal(r.savedBytes, before - afterBytes);
    assert.ok(afterBytes < before * 0.7, `journal shrank from ${before} to ${afterBytes} bytes`);
    const listed = stream.points.list();
    assert.deepEqual(thin(listed, stream.points, NOW_MS, POLICY).map((p) => p.seq), kept.map((p) => p.seq), 'the tiers keep the same points');
    assert.ok(listed.length < all, 'thinned points are gone');
    assert.deepEqual((await stream.compact(POLICY, NOW_MS)).segments, 0, 'a second pass has nothing to do');
    const seqs = kept.map((p) => p.seq);
    await checkPoints(stream, batches, sample(seqs, 4), 'after compaction');
    await stream.close();
    stream = await openStream(path);
    try {
      assert.deepEqual(stream.points.list(), listed, 'the same points after a restart');
      await checkPoints(stream, batches, sample(seqs, 9), 'after a restart');
    } finally {
      await stream.close();
    }
  });

  it('never removes what an open reader pins, and readers reading during the swap stay exact', async () => {
    const batches = compactionBatches(6, END_MS);
    const path = join(dir.path, 'pinned');
    const stream = await build(path, batches);
    try {
      const keptSeqs = new Set(thin(stream.points.list(), stream.points, NOW_MS, POLICY).map((p) => p.seq));
      const segmentStarts = new Set((await journalFiles(path)).map((f) => Number.parseInt(f, 16)));
      // A thinned point in an old segment, not its last seq: compaction would make it an interior seq.
      const pinned = stream.points
        .list()
        .find((p) => !keptSeqs.has(p.seq) && Date.parse(p.time) < END_MS - 30 * 60_000 && p.seq > 20 && !segmentStarts.has(p.seq + 1))!;
      assert.ok(pinned, 'a thinned point to pin');
      const reader = stream.openReader(pinned.seq);
      const keptSeq = [...keptSeqs].find((s) => s > pinned.seq + 10)!;
      const busy = stream.openReader(keptSeq);
      // Reads going on while the segments are swapped under them.
      let stop = false;
      let reads = 0;
      const want = await busy.read(0, busy.sizeBytes);
      const reading = (async () => {
        const r = rng(3);
        while (!stop) {
          const offset = int(r, 0, busy.sizeBytes - 1);
          const length = Math.min(int(r, 1, 512 * 1024), busy.sizeBytes - offset);
          assert.ok((await busy.read(offset, length)).equals(want.subarray(offset, offset + length)), `read at ${offset} during compaction`);
          reads++;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const r = await stream.compact(POLICY, NOW_MS);
      stop = true;
      await reading;
      assert.ok(r.segments > 0);
      assert.ok(reads > 0);
      assert.equal(sha256(want), referenceHash(batches, keptSeq, MAX_BYTES));
      assert.equal(sha256(await busy.read(0, busy.sizeBytes)), referenceHash(batches, keptSeq, MAX_BYTES));
      await busy.close();
      assert.equal(sha256(await reader.read(0, reader.sizeBytes)), referenceHash(batches, pinned.seq, MAX_BYTES), 'the pinned point is exact');
      assert.ok(stream.points.pointAt(pinned.seq), 'the pinned point is still a point');
      await reader.close();
      assert.ok((await stream.compact(POLICY, NOW_MS)).segments > 0, 'once released, its segment is compacted again');
      assert.equal(stream.points.pointAt(pinned.seq), undefined, 'and the point is gone');
    } finally {
      await stream.close();
    }
  });

  it('survives kill -9 at random moments of a compaction: the journal opens and every kept point stays exact', { timeout: 180_000 }, async (t) => {
    const batches = compactionBatches(7, END_MS);
    const base = join(dir.path, 'base');
    const stream = await build(base, batches);
    const kept = thin(stream.points.list(), stream.points, NOW_MS, POLICY).map((p) => p.seq);
    await stream.close();
    // What an uninterrupted compaction leaves: the goal of every interrupted one, to the byte.
    const reference = join(dir.path, 'reference');
    await cp(base, reference, { recursive: true });
    const ref = await openStream(reference);
    await ref.compact(POLICY, NOW_MS);
    await ref.close();
    const compactedBytes = await journalBytes(reference);
    const r = rng(11);
    let interrupted = 0;
    for (let round = 0; round < 4; round++) {
      const path = join(dir.path, `run${round}`);
      await cp(base, path, { recursive: true });
      const { done } = await runAndKill(path, int(r, 5, 400));
      const files = await journalFiles(path);
      const s = await openStream(path);
      try {
        assert.deepEqual((await journalFiles(path)).filter((f) => f.endsWith('.tmp')), [], 'no temporary file is left');
        const listed = new Set(s.points.list().map((p) => p.seq));
        for (const seq of kept) assert.ok(listed.has(seq), `round ${round}: kept point ${seq} is listed`);
        if (!done && files.some((f) => f.endsWith('.tmp'))) interrupted++;
        await checkPoints(s, batches, sample(kept, 6 + round), `round ${round}, after the kill`);
        await s.compact(POLICY, NOW_MS);
        assert.equal(await journalBytes(path), compactedBytes, `round ${round}: compaction finished after the restart`);
        await checkPoints(s, batches, sample(kept, 11), `round ${round}, compaction finished`);
      } finally {
        await s.close();
      }
    }
    t.diagnostic(`rounds killed with a compacted segment half written: ${interrupted}`);
  });
});

/** Runs the compaction child and kills it -9 `delayMs` after it started compacting. */
function runAndKill(streamDir: string, delayMs: number): Promise<{ done: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, streamDir, String(NOW_MS), String(POLICY.fullSeconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (!timer && text.includes('START')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child failed (${code}): ${stderr}`));
      else resolve({ done: text.includes('SEGMENTS') });
    });
  });
}
