/**
 * Replica machines really boot: a small Debian kernel + busybox system (test/fixtures/bootable)
 * under QEMU (TCG here), from a raw image and from a read-only NBD export through an overlay.
 * Boots are slow on a busy host (6 s idle, 20-40 s loaded): two full boots in this file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createQemuAdapter, type QemuAdapter } from '../../master-target/hypervisor/qemu.ts';
import { startReplicaMachine } from '../../master-target/hypervisor/replica-machine.ts';
import { buildMarkerDisk, prepareBootKernel } from '../fixtures/bootable/build.ts';
import { scratchDir, serveReadOnly, sha256File, waitStopped } from './support.ts';

const BOOT_TIMEOUT_MS = 90_000;
const prepared = await prepareBootKernel();
const skip = prepared.ok ? false : prepared.skipReason;
if (!prepared.ok) console.log(`# boot tests skipped: ${prepared.skipReason}`);

let dir: string;
let hv: QemuAdapter;
let disk: string;

before(async () => {
  dir = await scratchDir();
  disk = join(dir, 'disk.img');
  if (prepared.ok) await buildMarkerDisk(disk, { 'before-p': 'written before P', second: 'second marker' });
  hv = await createQemuAdapter({ stateDir: join(dir, 'machines') });
});

after(async () => {
  for (const m of (await hv?.list()) ?? []) await hv.delete(m.name);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a machine boots from a raw image in kernel mode, prints its markers and powers off', { skip, timeout: BOOT_TIMEOUT_MS + 30_000 }, async () => {
  if (!prepared.ok) return;
  const { kernelPath, initrdPath } = prepared.kernel;
  const consoleLogPath = join(dir, 'raw.console.log');
  const started = Date.now();
  await hv.create({
    name: 'raw', cpus: 1, memoryMiB: 256, network: 'none', consoleLogPath, maxRunSeconds: 180,
    disks: [{ source: disk, format: 'raw', access: 'read-only' }],
    boot: { mode: 'kernel', kernelPath, initrdPath },
  });
  const running = await hv.start('raw');
  assert.equal(running.state, 'running');
  assert.equal(running.accel, 'tcg');
  await hv.waitForConsole('raw', 'TIDEMARK-DONE', BOOT_TIMEOUT_MS);
  const stopped = await waitStopped(hv, 'raw', 30_000);
  console.log(`# raw image boot: ${Date.now() - started} ms`);
  assert.equal(stopped.state, 'stopped');
  const text = readFileSync(consoleLogPath, 'latin1');
  assert.match(text, /TIDEMARK-MOUNTED ro/);
  assert.match(text, /TIDEMARK-MARKER before-p written before P/);
  assert.match(text, /TIDEMARK-MARKER second second marker/);
  const record = JSON.parse(readFileSync(join(dir, 'machines', 'raw.json'), 'utf8'));
  assert.equal(record.state, 'stopped');
  await hv.delete('raw');
  assert.equal(existsSync(join(dir, 'machines', 'raw.json')), false);
});

test('a read-only nbd export boots writable through a qcow2 overlay and stays unchanged', { skip, timeout: BOOT_TIMEOUT_MS + 30_000 }, async () => {
  if (!prepared.ok) return;
  const { kernelPath, initrdPath } = prepared.kernel;
  const before = await sha256File(disk);
  const server = await serveReadOnly(disk);
  try {
    const started = Date.now();
    const machine = await startReplicaMachine(hv, {
      name: 'view', cpus: 1, memoryMiB: 256, network: 'isolated', maxRunSeconds: 180,
      disks: [{ uri: server.uri, writable: true }],
      bootMode: { mode: 'kernel', kernelPath, initrdPath, append: 'console=ttyS0 quiet panic=-1 tidemark.write=1' },
    });
    const record = await machine.record();
    assert.equal(record?.overlayPaths.length, 1);
    const overlay = record!.overlayPaths[0];
    assert.ok(existsSync(overlay));
    await machine.waitForConsole(/TIDEMARK-DONE/, BOOT_TIMEOUT_MS);
    await waitStopped(hv, 'view', 30_000);
    console.log(`# nbd overlay boot: ${Date.now() - started} ms`);
    const text = readFileSync(machine.consoleLogPath, 'latin1');
    assert.match(text, /TIDEMARK-MOUNTED rw/);
    assert.match(text, /TIDEMARK-MARKER before-p written before P/);
    assert.match(text, /TIDEMARK-WROTE ok/, 'the guest could write to its disk');
    await machine.delete();
    assert.equal(existsSync(overlay), false, 'delete removes the overlay');
  } finally {
    await server.close();
  }
  assert.equal(await sha256File(disk), before, 'the exported image is unchanged');
});
