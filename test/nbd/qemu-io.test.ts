/**
 * qemu-io (QEMU's own NBD client) against a file export: every operation is checked in the
 * file underneath, byte for byte, against a model of what the disk should hold.
 */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createNbdServer, fixedExports, openFileExport } from '../../core/nbd/index.ts';
import type { FileExport, NbdServer } from '../../core/nbd/index.ts';
import { describeRun, patternBytes, qemuIo, scratchDir, spyExport, type SpyCall } from './helpers.ts';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

describe('qemu-io against a file export', { timeout: 120_000 }, () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let path: string;
  let file: FileExport;
  let server: NbdServer;
  let calls: SpyCall[];
  let uri: string;
  /** What the disk must hold. */
  let model: Buffer;

  before(async () => {
    scratch = await scratchDir();
    path = join(scratch.dir, 'disk0.img');
    model = patternBytes(SIZE, 42);
    await writeFile(path, model);
    file = await openFileExport(path, { name: 'disk0' });
    const spy = spyExport(file);
    calls = spy.calls;
    server = createNbdServer({ exports: fixedExports([spy.exp]) });
    const { port } = await server.listen('127.0.0.1', 0);
    uri = `nbd://127.0.0.1:${port}/disk0`;
  });

  beforeEach(() => {
    calls.length = 0;
  });

  after(async () => {
    await server.close();
    await file.close();
    await scratch.cleanup();
  });

  async function assertFileMatchesModel(): Promise<void> {
    const actual = await readFile(path);
    assert.equal(actual.length, model.length, 'file size');
    const at = actual.findIndex((b, i) => b !== model[i]);
    assert.equal(at, -1, `file differs from the model first at byte ${at}`);
  }

  async function qemuIoOk(commands: string[]): Promise<void> {
    const r = await qemuIo(uri, commands);
    assert.equal(r.code, 0, describeRun(r));
    assert.doesNotMatch(r.stdout + r.stderr, /fail|error/i, describeRun(r));
  }

  test('writes of several sizes and alignments land at their offsets', { timeout: 60_000 }, async () => {
    await qemuIoOk([
      'write -P 0xab 4096 65536',
      'read -P 0xab 4096 65536',
      'write -P 0x5c 1000 3000',
      'read -P 0x5c 1000 3000',
      'write -P 0x3d 2M 1M',
      'read -P 0x3d 2M 1M',
      'write -P 0x7e 7M 33k',
      'read -P 0x7e 7M 33k',
    ]);
    model.fill(0xab, 4096, 4096 + 65536);
    model.fill(0x5c, 1000, 1000 + 3000);
    model.fill(0x3d, 2 * MiB, 3 * MiB);
    model.fill(0x7e, 7 * MiB, 7 * MiB + 33 * 1024);
    const writes = calls.filter((c) => c.op === 'write');
    assert.deepEqual(
      writes.map((c) => [c.offset, c.length, c.fua]),
      [
        [4096, 65536, false],
        [1000, 3000, false],
        [2 * MiB, MiB, false],
        [7 * MiB, 33 * 1024, false],
      ],
    );
    await assertFileMatchesModel();
  });

  test('reading back a different pattern fails (the check above can fail)', { timeout: 60_000 }, async () => {
    const r = await qemuIo(uri, ['read -P 0xac 4096 4096']);
    assert.notEqual(r.code, 0, describeRun(r));
    assert.match(r.stdout, /Pattern verification failed/);
  });

  test('flush reaches the backend', { timeout: 60_000 }, async () => {
    await qemuIoOk(['write -P 0x11 6M 8k', 'flush']);
    model.fill(0x11, 6 * MiB, 6 * MiB + 8192);
    assert.ok(calls.some((c) => c.op === 'flush'), JSON.stringify(calls));
    await assertFileMatchesModel();
  });

  test('write -f is a FUA write', { timeout: 60_000 }, async () => {
    await qemuIoOk(['write -f -P 0x22 3M 64k', 'read -P 0x22 3M 64k']);
    model.fill(0x22, 3 * MiB, 3 * MiB + 65536);
    const w = calls.find((c) => c.op === 'write');
    assert.deepEqual(w, { op: 'write', offset: 3 * MiB, length: 65536, fua: true });
    await assertFileMatchesModel();
  });

  test('discard zeroes the range and nothing else', { timeout: 60_000 }, async () => {
    await qemuIoOk(['discard 4M 128k']);
    model.fill(0, 4 * MiB, 4 * MiB + 128 * 1024);
    const t = calls.find((c) => c.op === 'trim');
    assert.equal(t?.offset, 4 * MiB);
    assert.equal(t?.length, 128 * 1024);
    await assertFileMatchesModel();
  });

  test('write -z keeps the range allocated (NO_HOLE); -u lets it be trimmed', { timeout: 60_000 }, async () => {
    await qemuIoOk(['write -z 5M 64k', 'read -P 0 5M 64k', 'write -z -u 5200k 100k', 'read -P 0 5200k 100k']);
    model.fill(0, 5 * MiB, 5 * MiB + 65536);
    model.fill(0, 5200 * 1024, 5300 * 1024);
    const zeroes = calls.filter((c) => c.op === 'writeZeroes');
    assert.deepEqual(
      zeroes.map((c) => [c.offset, c.length, c.mayTrim]),
      [
        [5 * MiB, 65536, false],
        [5200 * 1024, 100 * 1024, true],
      ],
    );
    await assertFileMatchesModel();
  });

  test('zeroing the tail leaves a hole and the size unchanged', { timeout: 60_000 }, async () => {
    const before = await stat(path);
    await qemuIoOk(['write -z -u 7M 1M', 'read -P 0 7M 1M', 'write -P 0x44 8388096 512']);
    model.fill(0, 7 * MiB, 8 * MiB);
    model.fill(0x44, SIZE - 512, SIZE);
    const after = await stat(path);
    assert.equal(after.size, SIZE);
    assert.ok(after.blocks < before.blocks, `blocks ${before.blocks} -> ${after.blocks}: no hole was made`);
    await assertFileMatchesModel();
  });

  test('a request past the end fails and changes nothing', { timeout: 60_000 }, async () => {
    const r = await qemuIo(uri, ['write -P 0x99 8188k 8k']);
    assert.notEqual(r.code, 0, describeRun(r));
    await assertFileMatchesModel();
  });
});
