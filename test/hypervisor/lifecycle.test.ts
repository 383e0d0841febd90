/**
 * Stopping and deleting: a machine that never prints the awaited pattern times out with a clear
 * error, a restarted adapter finds it through its JSON record, and delete kills its process
 * group and removes its overlay. One boot (not waited to the end) and one refused start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createQemuAdapter, type QemuAdapter } from '../../master-target/hypervisor/qemu.ts';
import { ConsoleTimeoutError, HypervisorError } from '../../master-target/hypervisor/errors.ts';
import { isAlive } from '../../master-target/hypervisor/process.ts';
import { buildMarkerDisk, prepareBootKernel } from '../fixtures/bootable/build.ts';
import { scratchDir, serveReadOnly, sha256File } from './support.ts';

const prepared = await prepareBootKernel();
const skip = prepared.ok ? false : prepared.skipReason;

let dir: string;
let hv: QemuAdapter;
let disk: string;

before(async () => {
  dir = await scratchDir();
  disk = join(dir, 'disk.img');
  if (prepared.ok) await buildMarkerDisk(disk, { only: 'one marker' });
  hv = await createQemuAdapter({ stateDir: join(dir, 'machines') });
});

after(async () => {
  for (const m of (await hv?.list()) ?? []) await hv.delete(m.name).catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a pattern never printed times out; a restarted adapter stops and deletes the machine and its overlay', { skip, timeout: 120_000 }, async () => {
  if (!prepared.ok) return;
  const { kernelPath, initrdPath } = prepared.kernel;
  await hv.create({
    name: 'quiet', cpus: 1, memoryMiB: 256, network: 'user', maxRunSeconds: 300,
    disks: [{ source: disk, access: 'overlay' }],
    boot: { mode: 'kernel', kernelPath, initrdPath },
  });
  const { pid, overlayPaths } = await hv.start('quiet');
  assert.ok(pid && isAlive(pid));
  assert.equal(overlayPaths.length, 1);
  assert.ok(existsSync(overlayPaths[0]));

  const waited = Date.now();
  await assert.rejects(hv.waitForConsole('quiet', 'NEVER-PRINTED', 3000), (err: unknown) => {
    assert.ok(err instanceof ConsoleTimeoutError);
    assert.match(err.message, /^machine quiet did not print \/NEVER-PRINTED\/ on its console within 3000 ms$/);
    assert.match(err.hint ?? '', /quiet\.console\.log/);
    return true;
  });
  assert.ok(Date.now() - waited < 10_000);

  // A master target restarted on the same state directory finds the running machine.
  const again = await createQemuAdapter({ stateDir: join(dir, 'machines') });
  const listed = await again.list();
  assert.deepEqual(listed.map((m) => [m.name, m.state, m.pid]), [['quiet', 'running', pid]]);

  // The guest ignores the ACPI power button (busybox, no acpid): stop falls back to force.
  const stopped = await again.stop('quiet', { graceMs: 1000 });
  assert.equal(stopped.state, 'stopped');
  assert.equal(isAlive(pid!), false, 'the qemu process group is gone');
  assert.ok(existsSync(overlayPaths[0]), 'stop keeps the overlay');

  await again.delete('quiet');
  assert.equal(existsSync(overlayPaths[0]), false, 'delete removes the overlay');
  assert.equal(existsSync(join(dir, 'machines', 'quiet.json')), false);
  assert.deepEqual(await again.list(), []);
});

test('a writable drive on a read-only export is refused at start with a hint; the export is untouched', { skip, timeout: 60_000 }, async () => {
  if (!prepared.ok) return;
  const before = await sha256File(disk);
  const server = await serveReadOnly(disk);
  try {
    await hv.create({
      name: 'refused', cpus: 1, memoryMiB: 128, network: 'none', maxRunSeconds: 60,
      disks: [{ source: server.uri, access: 'read-write' }],
      boot: { mode: 'disk' },
    });
    await assert.rejects(hv.start('refused'), (err: unknown) => {
      assert.ok(err instanceof HypervisorError);
      assert.match(err.message, /^machine refused did not start: /);
      assert.match(err.hint ?? '', /read-only, overlay or snapshot/);
      return true;
    });
    assert.equal((await hv.get('refused'))?.state, 'stopped');
    await hv.delete('refused');
  } finally {
    await server.close();
  }
  assert.equal(await sha256File(disk), before);
});
