import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';
import { buildImage } from '../../master-target/export.ts';
import { crashBatches, int, referenceHash, rng, sha256, tempDir } from './support.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/apply-loop.ts', import.meta.url));
const SEED = 42;
const KILLS = 8;
const MAX_BYTES = 8 * 1024 * 1024;

let dir: { path: string; remove(): Promise<void> };
before(async () => {
  await loadHashing();
  dir = await tempDir('crash');
});
after(() => dir.remove());

/** Runs the child until it has acknowledged something and a random delay passed, then kills it -9. */
function runAndKill(delayMs: number): Promise<{ acked: number; done: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir.path, String(SEED)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = 0;
    let done = false;
    let text = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      for (const m of text.matchAll(/ACK (\d+)\n/g)) acked = Math.max(acked, Number(m[1]));
      if (text.includes('DONE')) done = true;
      if (!timer && text.includes('START')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child failed (${code}): ${stderr}`));
      else resolve({ acked, done });
    });
  });
}

let rollbacks = 0;
const countingLogger = { ...silentLogger, info: (msg: string) => void (msg === 'uncommitted batch rolled back' && rollbacks++) };

async function openStream(): Promise<DiskStream> {
  return DiskStream.open(join(dir.path, 'streams', 'm1', 'disk0'), 'm1', 'disk0', { segmentBytes: 2 * 1024 * 1024, segmentMaxAgeMs: 3600_000 }, countingLogger);
}

it('survives kill -9 at random moments: nothing acknowledged is lost, the replica and points stay exact', { timeout: 120_000 }, async (t) => {
  const batches = crashBatches(SEED);
  const boundaries = new Set(batches.map((b) => b.firstSeq - 1));
  const r = rng(SEED);
  const tmp = join(dir.path, 'check');
  await mkdir(tmp, { recursive: true });
  let ackedEver = 0;
  let midBatch = 0;
  for (let round = 0; round < KILLS; round++) {
    const { acked, done } = await runAndKill(int(r, 20, 250));
    ackedEver = Math.max(ackedEver, acked);
    const stream = await openStream();
    const applied = stream.nextSeq - 1;
    assert.ok(applied >= ackedEver, `round ${round}: applied ${applied} < acknowledged ${ackedEver}`);
    assert.ok(boundaries.has(applied) || applied === batches.at(-1)!.firstSeq + batches.at(-1)!.records.length - 1, `position ${applied} is a batch boundary`);
    if (applied > acked) midBatch++;
    // The replica itself equals the reference at the committed position.
    const replica = await readFile(join(dir.path, 'streams/m1/disk0/replica.img'));
    assert.equal(sha256(replica), referenceHash(batches, applied, MAX_BYTES), `round ${round}: replica at ${applied}`);
    // An older point is exact too.
    if (applied > 0) {
      const seq = int(r, Math.max(0, stream.oldestSeq), applied);
      const img = await buildImage(stream, seq, tmp);
      assert.equal(sha256(await readFile(img.path)), referenceHash(batches, seq, MAX_BYTES), `round ${round}: image at ${seq}`);
      await unlink(img.path);
      // Replaying the last applied batch is a no-op.
      const last = batches.findLast((b) => b.firstSeq <= applied)!;
      assert.equal((await stream.apply(prepareBatch(encodeFrame(last)))).status, 'duplicate');
      assert.equal(stream.nextSeq, applied + 1);
    }
    await stream.close();
    if (done) break;
  }
  assert.ok(ackedEver > 0, 'the child acknowledged batches');
  t.diagnostic(`kills: ${KILLS}, rounds that recovered past the last ack: ${midBatch}, uncommitted batches rolled back: ${rollbacks}`);
});
