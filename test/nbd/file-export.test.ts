import assert from 'node:assert/strict';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { NbdErrno, NbdError, openFileExport } from '../../core/nbd/index.ts';
import { patternBytes, scratchDir } from './helpers.ts';

const MiB = 1024 * 1024;

for (const syncMaxBytes of [0, 64 * 1024, 8 * MiB]) {
  test(`file export operations match a model (syncMaxBytes ${syncMaxBytes})`, { timeout: 60_000 }, async () => {
    const scratch = await scratchDir();
    const path = join(scratch.dir, 'disk.img');
    const model = patternBytes(5 * MiB + 123, 8);
    await writeFile(path, model);
    const disk = await openFileExport(path, { name: 'd', syncMaxBytes });
    try {
      assert.equal(disk.sizeBytes, model.length);
      assert.equal(disk.multiConn, true);
      assert.deepEqual(await disk.read(1000, 5000), model.subarray(1000, 6000));
      assert.deepEqual(await disk.read(MiB - 7, 2 * MiB), model.subarray(MiB - 7, 3 * MiB - 7));

      const small = Buffer.alloc(3000, 0xa1);
      await disk.write(77, small, false);
      small.copy(model, 77);
      const large = patternBytes(MiB + 5, 9);
      await disk.write(2 * MiB + 1, large, true);
      large.copy(model, 2 * MiB + 1);

      // A payload in pieces, as it arrived (writev), with and without FUA.
      const pieces = patternBytes(MiB + 300, 10);
      const parts = [pieces.subarray(0, 1), pieces.subarray(1, 65_536), pieces.subarray(65_536, MiB), pieces.subarray(MiB)];
      await disk.writeParts!(MiB / 2 + 3, parts, pieces.length, false);
      pieces.copy(model, MiB / 2 + 3);
      await disk.writeParts!(4 * MiB + 9, parts.slice(0, 2), 65_536, true);
      pieces.copy(model, 4 * MiB + 9, 0, 65_536);
      assert.deepEqual(await disk.read(0, model.length), model);

      // Longer than the shared zero buffer, not at the end: written as zeros.
      await disk.writeZeroes(100, 2 * MiB + 50, false, true);
      model.fill(0, 100, 100 + 2 * MiB + 50);
      await disk.writeZeroes(3 * MiB, 4096, true, false);
      model.fill(0, 3 * MiB, 3 * MiB + 4096);
      await disk.trim(4 * MiB, 100, false);
      model.fill(0, 4 * MiB, 4 * MiB + 100);
      // Up to the end and allowed to trim: the tail is cut and grown back.
      await disk.writeZeroes(5 * MiB, 123, false, true);
      model.fill(0, 5 * MiB);
      await disk.flush();

      assert.deepEqual(await disk.read(0, model.length), model);
      assert.deepEqual(await readFile(path), model);
      assert.equal((await stat(path)).size, model.length);
    } finally {
      await disk.close();
      await scratch.cleanup();
    }
  });
}

test('bytes past the end of a file that shrank underneath read as zeros', { timeout: 60_000 }, async () => {
  const scratch = await scratchDir();
  const path = join(scratch.dir, 'disk.img');
  await writeFile(path, Buffer.alloc(8192, 1));
  const disk = await openFileExport(path, { name: 'd' });
  try {
    await truncate(path, 4096);
    const expected = Buffer.concat([Buffer.alloc(96, 1), Buffer.alloc(4000)]);
    assert.deepEqual(await disk.read(4000, 4096), expected);
  } finally {
    await disk.close();
    await scratch.cleanup();
  }
});

test('a read-only file export refuses writes with EPERM', { timeout: 60_000 }, async () => {
  const scratch = await scratchDir();
  const path = join(scratch.dir, 'disk.img');
  await writeFile(path, Buffer.alloc(4096, 3));
  const disk = await openFileExport(path, { name: 'ro', readOnly: true, description: 'golden image' });
  try {
    assert.equal(disk.readOnly, true);
    assert.equal(disk.description, 'golden image');
    for (const call of [
      () => disk.write(0, Buffer.alloc(1), false),
      () => disk.trim(0, 1, false),
      () => disk.writeZeroes(0, 1, false, false),
    ]) {
      assert.throws(call, (err: unknown) => err instanceof NbdError && err.errno === NbdErrno.EPERM);
    }
    assert.deepEqual(await readFile(path), Buffer.alloc(4096, 3));
  } finally {
    await disk.close();
    await scratch.cleanup();
  }
});

test('opening a missing file fails', { timeout: 60_000 }, async () => {
  await assert.rejects(openFileExport('/nonexistent/disk.img', { name: 'x' }), { code: 'ENOENT' });
});
