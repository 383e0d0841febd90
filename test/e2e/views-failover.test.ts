/**
 * Recovery through the CLI: `view`, `failover --test` then `cleanup`, `failover --live` (images
 * equal to the source at the point, batches refused afterwards), and, when the bootable test
 * system can be built here, a replica booted from a view at P shows the marker written before
 * P and not the one written after.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, FrameFlag, RecordType, type BatchInput, type BatchRecord } from '../../core/wire/frame.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { generateBatches, referenceHash, sha256, tempDir } from '../master-target/support.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const DISK = 4 * MiB;
const BIN = join(import.meta.dirname, '../../bin/tidemark.js');

function tidemark(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [BIN, ...args], { env: { ...process.env, TIDEMARK_LOG_LEVEL: 'error' } });
}

async function postFrame(url: string, b: BatchInput): Promise<number> {
  const res = await fetch(`${url}/v1/streams/${b.machine}/${b.disk}/batches`, { method: 'POST', body: encodeFrame(b), headers: { 'content-type': 'application/octet-stream' } });
  await res.arrayBuffer();
  return res.status;
}

describe('recovery through the CLI', { timeout: 80_000 }, () => {
  let dir: { path: string; remove(): Promise<void> };
  let mt: MasterTarget;
  const disks = ['disk0', 'disk1'].map((disk, i) => generateBatches({ seed: 40 + i, batches: 20, diskBytes: DISK, maxRecords: 6, maxWriteBytes: 128 * 1024, machine: 'web1', disk, startMs: Date.now() - 60_000, stepMs: 1000 }));
  before(async () => {
    dir = await tempDir('failover');
    mt = await startMasterTarget({ dataDir: dir.path, host: '127.0.0.1', port: 0, retentionSeconds: 86400, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 } });
    for (const batches of disks) for (const b of batches) assert.equal(await postFrame(mt.url, b), 200);
  });
  after(async () => {
    await mt?.close();
    await dir.remove();
  });

  it('view opens and closes a view and prints its nbd:// uri and id', async () => {
    const { stdout } = await tidemark('view', '--master-target', mt.url, '--machine', 'web1', '--disk', 'disk0', '--at', 'latest');
    const uri = /^(nbd:\/\/\S+)$/m.exec(stdout)?.[1];
    const id = /^view (v[0-9a-f]+):/m.exec(stdout)?.[1];
    assert.ok(uri && id, stdout);
    const out = join(dir.path, 'view.img');
    await run('nbdcopy', [uri, out]);
    const last = disks[0].at(-1)!;
    assert.equal(sha256(await readFile(out)), referenceHash(disks[0], last.firstSeq + last.records.length - 1, DISK));
    const closed = await tidemark('view', '--master-target', mt.url, '--close', id);
    assert.match(closed.stdout, new RegExp(`closed view ${id}`));
  });

  it('failover --test opens writable views of every disk at one moment; cleanup closes them', async () => {
    const at = new Date(disks[0][9].timeMs).toISOString();
    const { stdout } = await tidemark('failover', '--master-target', mt.url, '--machine', 'web1', '--at', at, '--test', '--json');
    const r = JSON.parse(stdout);
    assert.equal(r.mode, 'test');
    assert.equal(r.disks.length, 2);
    assert.ok(r.pointAgeSeconds > 0 && r.seconds < 5, stdout);
    for (const d of r.disks) {
      assert.ok(Date.parse(d.point.time) <= Date.parse(at));
      const batches = d.disk === 'disk0' ? disks[0] : disks[1];
      const out = join(dir.path, `${d.disk}.test.img`);
      await run('nbdcopy', [d.view.uri, out]);
      assert.equal(sha256(await readFile(out)), referenceHash(batches, d.point.seq, DISK), d.disk);
    }
    const human = await tidemark('failover', '--master-target', mt.url, '--machine', 'web1', '--at', at, '--test').then(
      () => 'ran twice',
      (e) => String(e.stderr),
    );
    assert.match(human, /already running[\s\S]*hint: run 'tidemark cleanup/);
    const c = await tidemark('cleanup', '--master-target', mt.url, '--machine', 'web1');
    assert.match(c.stdout, /cleaned up web1: 2 views closed/);
    const views = (await (await fetch(`${mt.url}/v1/views`)).json()) as { views: unknown[] };
    assert.equal(views.views.length, 0);
  });

  it('failover --live writes images equal to the source at the point and stops replication', async () => {
    const { stdout, stderr } = await tidemark('failover', '--master-target', mt.url, '--machine', 'web1', '--at', 'latest', '--live', '--json');
    const r = JSON.parse(stdout);
    assert.equal(r.mode, 'live');
    assert.match(stderr, /100%/);
    for (const d of r.disks) {
      const batches = d.disk === 'disk0' ? disks[0] : disks[1];
      assert.equal(sha256(await readFile(d.image.path)), referenceHash(batches, d.point.seq, DISK), d.disk);
    }
    const next = { ...disks[0][0], firstSeq: disks[0].at(-1)!.firstSeq + disks[0].at(-1)!.records.length };
    const res = await fetch(`${mt.url}/v1/streams/web1/disk0/batches`, { method: 'POST', body: encodeFrame(next), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 423);
    assert.match(((await res.json()) as { error: string }).error, /failed over/);
  });
});

describe('a replica booted from a view at P', { timeout: 85_000 }, async () => {
  const fixture = join(import.meta.dirname, '../fixtures/bootable/build.ts');
  const present = await access(fixture).then(() => true, () => false);
  let skip: string | false = present ? false : 'the bootable test system (test/fixtures/bootable) is not in this checkout';
  let kernel: { kernelPath: string; initrdPath: string } | undefined;
  let buildMarkerDisk: ((path: string, markers: Record<string, string>, sizeMiB?: number) => Promise<void>) | undefined;
  if (!skip) {
    const mod = (await import(fixture)) as {
      prepareBootKernel(): Promise<{ ok: true; kernel: { kernelPath: string; initrdPath: string } } | { ok: false; skipReason: string }>;
      buildMarkerDisk: typeof buildMarkerDisk;
    };
    const k = await mod.prepareBootKernel();
    if (k.ok) kernel = k.kernel;
    else skip = k.skipReason;
    buildMarkerDisk = mod.buildMarkerDisk;
  }

  it('prints the marker written before P and not the one written after', { skip }, async () => {
    const dir = await tempDir('boot');
    const mt = await startMasterTarget({ dataDir: dir.path, host: '127.0.0.1', port: 0, retentionSeconds: 86400, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 } });
    try {
      const a = join(dir.path, 'a.img');
      const b = join(dir.path, 'b.img');
      await buildMarkerDisk!(a, { before: 'written-before-P' });
      await buildMarkerDisk!(b, { before: 'written-before-P', after: 'written-after-P' });
      const [imgA, imgB] = [await readFile(a), await readFile(b)];
      const t0 = Date.now() - 10_000;
      // The source disk: image A (seq up to P), then what changed to make image B.
      const blocks = (img: Buffer, only?: Buffer): BatchRecord[] => {
        const out: BatchRecord[] = [];
        for (let at = 0; at < img.length; at += 64 * 1024) {
          const piece = img.subarray(at, at + 64 * 1024);
          if (only ? piece.equals(only.subarray(at, at + 64 * 1024)) : piece.every((x) => x === 0)) continue;
          out.push({ type: RecordType.WRITE, offset: at, data: piece });
        }
        return out;
      };
      const first = blocks(imgA);
      const b1: BatchInput = { machine: 'vm1', disk: 'disk0', firstSeq: 1, timeMs: t0, diskBytes: imgA.length, flags: FrameFlag.ORDERED, records: first };
      const b2: BatchInput = { machine: 'vm1', disk: 'disk0', firstSeq: 1 + first.length, timeMs: t0 + 5000, diskBytes: imgB.length, flags: FrameFlag.ORDERED, records: blocks(imgB, imgA) };
      assert.equal(await postFrame(mt.url, b1), 200);
      assert.equal(await postFrame(mt.url, b2), 200);
      const res = await fetch(`${mt.url}/v1/machines/vm1/failover`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ at: new Date(t0 + 1000).toISOString(), mode: 'test', boot: { ...kernel, append: 'console=ttyS0 quiet panic=-1', memoryMiB: 256, maxRunSeconds: 60 } }),
      });
      const r = (await res.json()) as { replica: { consoleLogPath: string }; disks: Array<{ point: { seq: number } }>; error?: string };
      assert.equal(res.status, 201, r.error);
      assert.equal(r.disks[0].point.seq, first.length);
      const deadline = Date.now() + 60_000;
      let text = '';
      while (Date.now() < deadline && !/TIDEMARK-DONE/.test(text)) {
        await new Promise((ok) => setTimeout(ok, 250));
        text = await readFile(r.replica.consoleLogPath, 'latin1').catch(() => '');
      }
      assert.match(text, /TIDEMARK-MARKER before written-before-P/);
      assert.doesNotMatch(text, /TIDEMARK-MARKER after/);
      const c = await fetch(`${mt.url}/v1/machines/vm1/cleanup`, { method: 'POST' });
      assert.equal(c.status, 200);
    } finally {
      await mt.close();
      await dir.remove();
    }
  });
});
