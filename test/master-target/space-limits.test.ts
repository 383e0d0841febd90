/**
 * Space limits of the master target: the journal cap and the free space kept, on the real file
 * system and on a small tmpfs that really fills; replication goes on, the oldest points go
 * first, and every point still listed reads back byte-exact.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createLogger, silentLogger, type Logger } from '../../core/log.ts';
import { loadHashing } from '../../core/hash.ts';
import { seededRandom } from '../../core/seeded-random.ts';
import { encodeFrame, RecordType, type BatchInput, type BatchRecord } from '../../core/wire/frame.ts';
import { buildImage } from '../../master-target/export.ts';
import { openMasterTarget, type MasterTargetApp, type MasterTargetOptions } from '../../master-target/server.ts';
import { hashesBySeq, sha256, tempDir } from './support.ts';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const DISK_BYTES = 4 * MiB;
const WRITE_BYTES = 256 * KiB;

/**
 * Batches of random (incompressible) 256 KiB writes over a 4 MiB disk, a minute apart: once
 * the disk is full of data, every write leaves 256 KiB of old bytes in the journal.
 */
function overwrites(seed: number, machine: string, count: number, startMs: number): BatchInput[] {
  const r = seededRandom(seed);
  const out: BatchInput[] = [];
  let seq = 1;
  for (let b = 0; b < count; b++) {
    const records: BatchRecord[] = [];
    for (let i = 0; i < 4; i++) {
      const data = Buffer.allocUnsafe(WRITE_BYTES);
      for (let k = 0; k < WRITE_BYTES; k += 4) data.writeUInt32LE((r() * 2 ** 32) >>> 0, k);
      records.push({ type: RecordType.WRITE, offset: Math.floor(r() * (DISK_BYTES / WRITE_BYTES)) * WRITE_BYTES, data });
    }
    records.push({ type: RecordType.TAG, tag: { kind: 'crash', timeMs: startMs + b * 60_000 } });
    out.push({ machine, disk: 'disk0', firstSeq: seq, timeMs: startMs + b * 60_000, diskBytes: DISK_BYTES, flags: 0, records });
    seq += records.length;
  }
  return out;
}

function post(mt: MasterTargetApp, b: BatchInput): Promise<Response> {
  return Promise.resolve(mt.app.request(`/v1/streams/${b.machine}/${b.disk}/batches`, { method: 'POST', body: encodeFrame(b), headers: { 'content-type': 'application/octet-stream' } }));
}

async function postOk(mt: MasterTargetApp, b: BatchInput): Promise<void> {
  const res = await post(mt, b);
  assert.equal(res.status, 200, `batch ${b.firstSeq} of ${b.machine}: ${await res.text()}`);
}

async function metric(mt: MasterTargetApp, name: string): Promise<number> {
  const text = await (await mt.app.request('/metrics')).text();
  const m = new RegExp(`^tidemark_master_target_${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `metric ${name}`);
  return Number(m[1]);
}

async function segmentsOf(dataDir: string, machine: string): Promise<number> {
  return (await readdir(join(dataDir, 'streams', machine, 'disk0', 'journal'))).filter((f) => f.endsWith('.seg')).length;
}

/** Every point the master target still lists for `machine` reads back as the source was then; returns how many. */
async function pointsExact(mt: MasterTargetApp, machine: string, hashes: string[], tmp: string): Promise<{ checked: number; oldest: number }> {
  const { points } = (await (await mt.app.request(`/v1/machines/${machine}/disks/disk0/points?limit=10000`)).json()) as { points: Array<{ seq: number }> };
  const stream = mt.store.get(machine, 'disk0')!;
  for (const p of points) {
    const img = await buildImage(stream, p.seq, tmp);
    try {
      assert.equal(sha256(await readFile(img.path)), hashes[p.seq], `${machine} at point ${p.seq}`);
    } finally {
      await unlink(img.path);
    }
  }
  return { checked: points.length, oldest: points[0].seq };
}

/** What the site link reports of the stream: its points summary's `shortenedForSpaceTime`. */
async function summaryShortened(mt: MasterTargetApp, machine: string): Promise<string | undefined> {
  const res = await mt.app.request(`/v1/machines/${machine}/disks/disk0/points/summary`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { shortenedForSpaceTime?: string }).shortenedForSpaceTime;
}

async function statfsOf(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

function capturingLogger(lines: string[]): Logger {
  return createLogger('master-target', { level: 'warn', write: (line) => lines.push(line) });
}

const base: Omit<MasterTargetOptions, 'host' | 'port' | 'dataDir'> = { retentionSeconds: 100 * 365 * 86400, segmentBytes: 1 * MiB, retentionFullSeconds: 100 * 365 * 86400, log: silentLogger };

before(loadHashing);

describe('master target space limits', () => {
  const startMs = Date.UTC(2030, 0, 1);
  const a = overwrites(1, 'ma', 40, startMs);
  const b = overwrites(2, 'mb', 40, startMs + 30_000);
  const hashesA = hashesBySeq(a, DISK_BYTES);
  const hashesB = hashesBySeq(b, DISK_BYTES);

  it('keeps all journals under --journal-max by deleting the oldest segments of any stream first', async () => {
    const dir = await tempDir('journal-max');
    const lines: string[] = [];
    const mt = await openMasterTarget({ ...base, dataDir: dir.path, keepFreeBytes: 0, journalMaxBytes: 8 * MiB, log: capturingLogger(lines) });
    try {
      let most = 0;
      for (let i = 0; i < a.length; i++) {
        await postOk(mt, a[i]);
        await postOk(mt, b[i]);
        most = Math.max(most, mt.space.journalBytes());
      }
      // Each apply starts under the cap; one batch (4 writes of 256 KiB, their undo) may go past it.
      assert.ok(most <= 8 * MiB + 4 * WRITE_BYTES + 64 * KiB, `journals peaked at ${most} bytes`);
      assert.ok(await metric(mt, 'space_deleted_segments_total') >= 20, 'segments deleted for space');
      // Within the 100-year window: only space made the oldest points go, in both streams alike.
      const ea = await pointsExact(mt, 'ma', hashesA, mt.store.tmpDir);
      const eb = await pointsExact(mt, 'mb', hashesB, mt.store.tmpDir);
      assert.ok(ea.oldest > 60 && eb.oldest > 60, `oldest points ${ea.oldest} / ${eb.oldest}`);
      assert.ok(ea.checked >= 2 && eb.checked >= 2, `points left ${ea.checked} / ${eb.checked}`);
      assert.ok(Math.abs(ea.oldest - eb.oldest) <= 40, 'the oldest segments went first, whichever stream held them');
      const machines = (await (await mt.app.request('/v1/machines')).json()) as { machines: Array<{ machine: string; disks: Array<{ journalBytes: number; shortenedForSpaceTime?: string }> }> };
      for (const m of machines.machines) assert.match(m.disks[0].shortenedForSpaceTime ?? '', /^20\d\d-/, `${m.machine} says its window was shortened`);
      for (const m of ['ma', 'mb']) assert.match(await summaryShortened(mt, m) ?? '', /^20\d\d-.*Z$/, `${m}'s points summary says its window was shortened`);
      assert.ok(lines.some((l) => /journal segment deleted inside the retention window/.test(l) && /--journal-max/.test(l)), 'a warning names the limit');
    } finally {
      await mt.close();
      await dir.remove();
    }
  });

  it('keeps --keep-free on the real file system: a limit it cannot reach leaves each stream its newest segment, and open readers theirs', async () => {
    const dir = await tempDir('keep-free');
    const lines: string[] = [];
    const opts = { ...base, dataDir: dir.path, keepFreeBytes: 0 };
    let mt = await openMasterTarget(opts);
    try {
      for (const batch of a.slice(0, 20)) await postOk(mt, batch);
      assert.ok(await segmentsOf(dir.path, 'ma') > 4);
      assert.equal(await summaryShortened(mt, 'ma'), undefined, 'nothing deleted for space yet');
      await mt.close();
      // More free space than this file system has: every pass deletes what it may.
      mt = await openMasterTarget({ ...opts, keepFreeBytes: 2 ** 60, log: capturingLogger(lines) });
      assert.equal(await segmentsOf(dir.path, 'ma'), 1, 'started over the limit: down to the newest segment');
      assert.match(await summaryShortened(mt, 'ma') ?? '', /^20\d\d-/, 'the summary says the window was shortened');
      const reader = mt.store.get('ma', 'disk0')!.openReader(mt.store.get('ma', 'disk0')!.nextSeq - 1);
      for (const batch of a.slice(20)) await postOk(mt, batch);
      assert.ok(await segmentsOf(dir.path, 'ma') > 1, 'the open reader keeps the segments it reads through');
      await reader.close();
      const before = await segmentsOf(dir.path, 'ma');
      await postOk(mt, overwrites(1, 'ma', 41, startMs)[40]);
      assert.ok(await segmentsOf(dir.path, 'ma') < before, 'reader closed: they go at the next batch');
      assert.ok(mt.store.get('ma', 'disk0')!.oldestSeq >= a[38].firstSeq - 1, 'all but the newest segment before it');
      const e = await pointsExact(mt, 'ma', hashesBySeq(overwrites(1, 'ma', 41, startMs), DISK_BYTES), mt.store.tmpDir);
      assert.ok(e.checked >= 1);
      assert.ok(lines.some((l) => /no journal segment can be deleted/.test(l)), 'the limit it cannot keep is reported');
    } finally {
      await mt.close();
      await dir.remove();
    }
  });
});

describe('master target on a file system that fills (tmpfs)', () => {
  let holder: { path: string; remove(): Promise<void> };
  let mounted = 0;
  before(async () => {
    holder = await tempDir('tmpfs');
  });
  after(() => holder.remove());

  /** A tmpfs of `sizeMiB` for one test, unmounted after it. */
  async function withTmpfs(sizeMiB: number, fn: (mnt: string) => Promise<void>): Promise<void> {
    const mnt = join(holder.path, `mnt${mounted++}`);
    await mkdir(mnt);
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', mnt]);
    } catch (err) {
      throw new Error(`this test mounts a ${sizeMiB} MiB tmpfs and needs root: ${(err as Error).message}`);
    }
    try {
      await fn(mnt);
    } finally {
      await run('umount', [mnt]);
    }
  }

  it('without --keep-free a full disk refuses the batch (507) and keeps nothing of it; with it, room is made and every batch applies', () => withTmpfs(24, async (mnt) => {
    const startMs = Date.UTC(2030, 0, 1);
    const batches = overwrites(3, 'mc', 60, startMs);
    const hashes = hashesBySeq(batches, DISK_BYTES);
    const dataDir = join(mnt, 'mt');
    // A neighbour's file takes some of the space: the limit is about the file system, not only the journals.
    await writeFile(join(mnt, 'neighbour'), Buffer.alloc(512 * KiB, 1));
    let mt = await openMasterTarget({ ...base, dataDir, keepFreeBytes: 0 });
    let applied = 0;
    let refused: Response | undefined;
    try {
      for (const batch of batches) {
        const res = await post(mt, batch);
        if (res.status !== 200) {
          refused = res;
          break;
        }
        applied++;
      }
      assert.ok(refused, '60 MiB of overwrites cannot fit 24 MiB with every point kept');
      assert.equal(refused.status, 507);
      assert.match(((await refused.json()) as { error: string }).error, /no space left/);
      assert.ok(applied >= 5, `${applied} batches applied before the disk filled`);
      const at = (await (await mt.app.request('/v1/streams/mc/disk0')).json()) as { nextSeq: number };
      assert.equal(at.nextSeq, batches[applied].firstSeq, 'the refused batch left nothing behind');
    } finally {
      await mt.close();
    }
    // Room for less than a batch: the batch that then finds the disk full is retried once room is made.
    mt = await openMasterTarget({ ...base, dataDir, keepFreeBytes: 256 * KiB });
    try {
      for (const batch of batches.slice(applied)) await postOk(mt, batch);
      assert.ok(await metric(mt, 'space_deleted_segments_total') > 0);
      assert.ok(await metric(mt, 'space_retried_batches_total') > 0, 'a batch met a full disk and was applied on its second try');
      // Images go beside the file system, not onto it: it is full again by now.
      const e = await pointsExact(mt, 'mc', hashes, holder.path);
      assert.equal(mt.store.get('mc', 'disk0')!.nextSeq - 1, batches.at(-1)!.firstSeq + 4, 'every batch applied');
      assert.ok(e.oldest > batches[applied].firstSeq, 'points from before the restart were deleted for space');
      assert.ok(e.checked >= 3, `${e.checked} points left, each exact`);
    } finally {
      await mt.close();
    }
  }));

  it('a batch whose replica writes find the disk full is rolled back whole: no write of it lands after the rollback', () => withTmpfs(32, async (mnt) => {
    // A 64 MiB sparse replica: undo records of never-written blocks are tiny, so the journal
    // fits and it is the replica's writes (four at once, into holes) that meet the full disk.
    const bigDisk = 64 * MiB;
    const r = seededRandom(9);
    const batches: BatchInput[] = [];
    for (let b = 0, seq = 1; b < 6; b++, seq += 5) {
      const records: BatchRecord[] = [];
      for (let i = 0; i < 4; i++) {
        const data = Buffer.allocUnsafe(MiB);
        for (let k = 0; k < MiB; k += 4) data.writeUInt32LE((r() * 2 ** 32) >>> 0, k);
        records.push({ type: RecordType.WRITE, offset: (b * 4 + i) * MiB + 4 * KiB, data });
      }
      records.push({ type: RecordType.TAG, tag: { kind: 'crash', timeMs: Date.UTC(2030, 0, 1) + b } });
      batches.push({ machine: 'md', disk: 'disk0', firstSeq: seq, timeMs: Date.UTC(2030, 0, 1) + b, diskBytes: bigDisk, flags: 0, records });
    }
    const hashes = hashesBySeq(batches, bigDisk);
    const dataDir = join(mnt, 'mt');
    const mt = await openMasterTarget({ ...base, dataDir, keepFreeBytes: 0 });
    try {
      await postOk(mt, batches[0]);
      // Leave about 2.5 MiB: the next batch's four 1 MiB writes cannot all land.
      const s = await statfsOf(mnt);
      await writeFile(join(mnt, 'neighbour'), Buffer.alloc(s - 2.5 * MiB, 1));
      const refused = await post(mt, batches[1]);
      assert.equal(refused.status, 507, await refused.clone().text());
      const e = await pointsExact(mt, 'md', hashes, holder.path);
      assert.equal(e.checked, 1, 'the refused batch left no point');
      await unlink(join(mnt, 'neighbour'));
      for (const batch of batches.slice(1)) await postOk(mt, batch);
      const all = await pointsExact(mt, 'md', hashes, holder.path);
      assert.equal(all.checked, batches.length);
    } finally {
      await mt.close();
    }
  }));
});
