import assert from 'node:assert/strict';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIRECT_ALIGN_BYTES, ImageWriter } from '../../master-target/views/image-writer.ts';
import { mountRamfs, takesDirectIo } from './direct-io-support.ts';
import { tempDir } from './support.ts';

const KiB = 1024;

function pattern(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (i * 131 + seed * 7 + 1) & 0xff || 1;
  return b;
}

describe('ImageWriter', () => {
  let dir: { path: string; remove(): Promise<void> };
  let direct = false;
  before(async () => {
    dir = await tempDir('image-writer');
    direct = await takesDirectIo(dir.path);
  });
  after(() => dir.remove());

  /** Writes an aligned run, a run with a partial head and tail, and an ordinary buffer; returns the expected image. */
  async function writeMixed(path: string, sizeBytes: number, useDirect: boolean): Promise<{ expected: Buffer; w: ImageWriter }> {
    const expected = Buffer.alloc(sizeBytes);
    const w = await ImageWriter.create(path, sizeBytes, { direct: useDirect, syncWhileWriting: true });
    try {
      const [a, b] = w.buffers(2, 256 * KiB);
      pattern(256 * KiB, 1).copy(a);
      pattern(256 * KiB, 2).copy(b);
      // Whole blocks: offset 64 KiB in the buffer goes to 64 KiB + 1 MiB in the file.
      const aligned = a.subarray(64 * KiB, 192 * KiB);
      // A run that starts and ends inside blocks, at the same alignment in buffer and file.
      const ragged = b.subarray(100, 100 + 3 * DIRECT_ALIGN_BYTES + 50);
      const plain = pattern(5000, 3);
      await Promise.all([w.write(aligned, 1024 * KiB + 64 * KiB), w.write(ragged, 2048 * KiB + 100), w.write(plain, 3000 * KiB + 7)]);
      // The partial last block of the image.
      const tail = b.subarray(0, sizeBytes % DIRECT_ALIGN_BYTES);
      await w.write(tail, sizeBytes - tail.length);
      aligned.copy(expected, 1024 * KiB + 64 * KiB);
      ragged.copy(expected, 2048 * KiB + 100);
      plain.copy(expected, 3000 * KiB + 7);
      tail.copy(expected, sizeBytes - tail.length);
      await w.finish();
    } finally {
      await w.close();
    }
    return { expected, w };
  }

  it('writes whole blocks direct and partial ones through the page cache, the same bytes either way', async () => {
    const sizeBytes = 4 * 1024 * KiB + 1234;
    const d = await writeMixed(join(dir.path, 'direct.img'), sizeBytes, true);
    const b = await writeMixed(join(dir.path, 'buffered.img'), sizeBytes, false);
    const fromDirect = await readFile(join(dir.path, 'direct.img'));
    assert.equal(fromDirect.length, sizeBytes);
    assert.ok(fromDirect.equals(d.expected), 'the direct image holds what was written');
    assert.ok((await readFile(join(dir.path, 'buffered.img'))).equals(b.expected), 'the buffered image holds what was written');
    const total = 128 * KiB + 3 * DIRECT_ALIGN_BYTES + 50 + 5000 + (sizeBytes % DIRECT_ALIGN_BYTES);
    assert.equal(b.w.counts.directBytes, 0);
    assert.equal(b.w.counts.bufferedBytes, total);
    if (direct) {
      // The aligned run, and the ragged run's two whole blocks; the rest is partial or not ours.
      assert.equal(d.w.counts.directBytes, 128 * KiB + 2 * DIRECT_ALIGN_BYTES);
      assert.equal(d.w.counts.bufferedBytes, total - d.w.counts.directBytes);
    } else assert.equal(d.w.counts.directBytes, 0, 'this folder refuses O_DIRECT');
    // Holes: nothing but the written blocks is allocated.
    assert.ok((await stat(join(dir.path, 'direct.img'))).blocks * 512 <= 256 * KiB, 'the direct image stays sparse');
  });

  it('refuses to replace an existing file', async () => {
    const path = join(dir.path, 'exists.img');
    await (await open(path, 'w')).close();
    await assert.rejects(ImageWriter.create(path, 4096), { code: 'EEXIST' });
  });

  it('writes through the page cache where the filesystem refuses O_DIRECT', async (t) => {
    const ramfs = await mountRamfs(dir.path);
    if (!ramfs) return t.skip('cannot mount a ramfs here (needs root)');
    try {
      assert.equal(await takesDirectIo(ramfs.path), false, 'ramfs refuses O_DIRECT');
      const sizeBytes = 4 * 1024 * KiB + 1234;
      const { expected, w } = await writeMixed(join(ramfs.path, 'r.img'), sizeBytes, true);
      assert.equal(w.counts.directBytes, 0);
      assert.ok((await readFile(join(ramfs.path, 'r.img'))).equals(expected));
    } finally {
      await ramfs.unmount();
    }
  });
});
