import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame } from '../../core/wire/frame.ts';
import { openMasterTarget, type MasterTargetApp } from '../../master-target/server.ts';
import { generateBatches, referenceHash, sha256, tempDir } from './support.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const DISK = 8 * MiB;
const batches = generateBatches({ seed: 11, batches: 60, diskBytes: DISK, maxRecords: 8, maxWriteBytes: 256 * 1024 });

async function post(mt: MasterTargetApp, path: string, body: unknown, method = 'POST') {
  const res = await mt.app.request(path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as any };
}

async function apply(mt: MasterTargetApp, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const res = await mt.app.request('/v1/streams/m1/disk0/batches', { method: 'POST', body: encodeFrame(batches[i]), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 200, await res.text());
  }
}

/** The last seq of batch `i`. */
const lastSeqOf = (i: number) => batches[i].firstSeq + batches[i].records.length - 1;

describe('point-in-time views over NBD', { timeout: 60_000 }, () => {
  let dir: { path: string; remove(): Promise<void> };
  let mt: MasterTargetApp;
  let clock = Date.UTC(2030, 0, 1);
  before(async () => {
    dir = await tempDir('views');
    // A leftover scratch file of an earlier run: the restart must remove it.
    await mkdir(join(dir.path, 'tmp', 'views'), { recursive: true });
    await writeFile(join(dir.path, 'tmp', 'views', 'vdeadbeef.scratch'), 'old');
    mt = await openMasterTarget({
      dataDir: dir.path, retentionSeconds: 3600, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 },
      scratchBytes: 512 * 1024, segmentBytes: 256 * 1024, retentionIntervalMs: 3600_000, now: () => clock,
    });
  });
  after(async () => {
    await mt?.close();
    await dir.remove();
  });

  it('empties leftover scratch files at startup', async () => {
    assert.deepEqual(await readdir(join(dir.path, 'tmp', 'views')).catch(() => []), []);
  });

  it('reads a view at P with nbdcopy equal to the source at P while batches are applied, and keeps its point through retention', async () => {
    await apply(mt, 0, 30);
    const p = lastSeqOf(29);
    const t0 = performance.now();
    const v = await post(mt, '/v1/machines/m1/disks/disk0/views', { at: 'latest', writable: false });
    const openMs = performance.now() - t0;
    assert.equal(v.status, 201, JSON.stringify(v.body));
    assert.equal(v.body.point.seq, p);
    assert.match(v.body.uri, /^nbd:\/\/127\.0\.0\.1:\d+\/m1\.disk0\.v[0-9a-f]+$/);
    assert.ok(openMs < 1000, `opened in ${openMs} ms`);
    const out = join(dir.path, 'out.img');
    // Replication goes on underneath while the view is copied.
    const [copied] = await Promise.all([run('nbdcopy', [v.body.uri, out]), apply(mt, 30, 60)]);
    assert.equal(copied.stderr, '');
    const expected = referenceHash(batches, p, DISK);
    assert.equal(sha256(await readFile(out)), expected);
    // Move the clock past the window: retention deletes what no view needs, and nothing the view needs.
    const stream = mt.store.get('m1', 'disk0')!;
    const segmentsBefore = (await readdir(join(dir.path, 'streams/m1/disk0/journal'))).length;
    clock = Date.UTC(2031, 0, 1);
    await mt.retainer.runOnce(mt.store);
    assert.ok(stream.oldestSeq <= p, `oldest seq ${stream.oldestSeq} is after the pinned point ${p}`);
    const segmentsAfter = (await readdir(join(dir.path, 'streams/m1/disk0/journal'))).length;
    assert.ok(segmentsAfter < segmentsBefore, `retention deleted nothing (${segmentsBefore} segments)`);
    await run('nbdcopy', ['--destination-is-zero', v.body.uri, out + '2']).catch(async () => run('nbdcopy', [v.body.uri, out + '2']));
    assert.equal(sha256(await readFile(out + '2')), expected);
    const listed = await mt.app.request('/v1/views');
    assert.equal(((await listed.json()) as any).views.length, 1);
    assert.equal((await post(mt, `/v1/views/${v.body.id}`, undefined, 'DELETE')).status, 200);
    // With the pin gone, retention moves on.
    await mt.retainer.runOnce(mt.store);
    assert.ok(stream.oldestSeq > p, `oldest seq ${stream.oldestSeq} should now be past ${p}`);
    clock = Date.UTC(2030, 0, 1);
  });

  it("keeps a writable view's writes in its overlay only, gone after close; ENOSPC past the scratch bound", async () => {
    const stream = mt.store.get('m1', 'disk0')!;
    const replicaBefore = sha256(await readFile(join(dir.path, 'streams/m1/disk0/replica.img')));
    const v = await post(mt, '/v1/machines/m1/disks/disk0/views', { at: 'latest', writable: true });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    const uri = v.body.uri;
    const expected = referenceHash(batches, v.body.point.seq, DISK);
    // A partial-block write (read-modify-write) and a whole-block one.
    await run('qemu-io', ['-f', 'raw', uri, '-c', 'write -P 0xab 1000 3000', '-c', 'write -P 0xcd 1m 64k']);
    const { stdout } = await run('qemu-io', ['-f', 'raw', uri, '-c', 'read -P 0xab 1000 3000', '-c', 'read -P 0xcd 1m 64k']);
    assert.doesNotMatch(stdout, /Pattern verification failed/);
    const copy = join(dir.path, 'w.img');
    await run('nbdcopy', [uri, copy]);
    const bytes = await readFile(copy);
    assert.ok(bytes.subarray(1000, 4000).every((b) => b === 0xab));
    const ref = await readFile(join(dir.path, 'out.img'));
    // Bytes around the partial write are the point's own.
    assert.equal(sha256(bytes.subarray(0, 1000)), sha256(ref.subarray(0, 1000)));
    // The replica never saw the writes.
    assert.equal(sha256(await readFile(join(dir.path, 'streams/m1/disk0/replica.img'))), replicaBefore);
    // Beyond the 512 KiB scratch bound, the client gets ENOSPC.
    const full = await run('qemu-io', ['-f', 'raw', uri, '-c', 'write -P 0x11 2m 1m']).then((r) => r.stdout + r.stderr, (e) => String(e.stdout) + String(e.stderr));
    assert.match(full, /No space left on device/);
    assert.equal((await post(mt, `/v1/views/${v.body.id}`, undefined, 'DELETE')).status, 200);
    assert.deepEqual(await readdir(join(dir.path, 'tmp', 'views')), []);
    assert.equal(stream.openReaders, 0);
    // A new view at the same point shows the point, not the drill's writes.
    const again = await post(mt, '/v1/machines/m1/disks/disk0/views', { at: 'latest', writable: true });
    assert.equal(again.body.point.seq, v.body.point.seq);
    await run('nbdcopy', [again.body.uri, copy + '2']);
    assert.equal(sha256(await readFile(copy + '2')), expected);
    await post(mt, `/v1/views/${again.body.id}`, undefined, 'DELETE');
  });

  it('refuses a read-only view write and an unknown view with clear errors', async () => {
    const v = await post(mt, '/v1/machines/m1/disks/disk0/views', { at: 'latest' });
    const r = await run('qemu-io', ['-f', 'raw', v.body.uri, '-c', 'write 0 4k']).then((x) => x.stdout + x.stderr, (e) => String(e.stdout) + String(e.stderr));
    assert.match(r, /Operation not permitted|read-only|Permission denied/i);
    await post(mt, `/v1/views/${v.body.id}`, undefined, 'DELETE');
    const gone = await post(mt, `/v1/views/${v.body.id}`, undefined, 'DELETE');
    assert.equal(gone.status, 404);
    assert.match(gone.body.error, /no view/);
    const bad = await post(mt, '/v1/machines/m1/disks/disk0/views', { at: '999999999' });
    assert.equal(bad.status, 404);
    assert.ok(bad.body.hint);
  });
});
