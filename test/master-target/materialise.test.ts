import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, FrameFlag, RecordType } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';
import { materialise, type MaterialiseProgress } from '../../master-target/views/materialise.ts';
import { mountRamfs, takesDirectIo } from './direct-io-support.ts';
import { generateBatches, referenceHash, sha256, tempDir } from './support.ts';

const MiB = 1024 * 1024;

function hasQemuImg(): boolean {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

before(loadHashing);

describe('materialise', () => {
  let dir: { path: string; remove(): Promise<void> };
  let stream: DiskStream;
  const batches = generateBatches({ seed: 31, batches: 40, diskBytes: 24 * MiB, growToBytes: 40 * MiB, maxRecords: 10, maxWriteBytes: 3 * MiB });
  const hashAt = (seq: number) => referenceHash(batches, seq, 40 * MiB);

  before(async () => {
    dir = await tempDir('materialise');
    stream = await DiskStream.open(join(dir.path, 'stream'), 'm1', 'disk0', { segmentBytes: 4 * MiB, segmentMaxAgeMs: 3600_000 }, silentLogger);
    for (const b of batches) assert.equal((await stream.apply(prepareBatch(encodeFrame(b)))).status, 'applied');
  });
  after(async () => {
    await stream.close();
    await dir.remove();
  });

  it('writes the disk at every sampled point byte for byte, with progress to the end', async () => {
    const last = stream.nextSeq - 1;
    for (const seq of [0, 1, Math.floor(last / 3), Math.floor(last / 2), last - 1, last]) {
      const reader = stream.openReader(seq);
      const seen: MaterialiseProgress[] = [];
      try {
        const out = join(dir.path, `p${seq}.img`);
        const r = await materialise(reader, out, { onProgress: (p) => seen.push(p) });
        assert.equal(sha256(await readFile(out)), hashAt(seq), `image at seq ${seq}`);
        assert.equal(r.sizeBytes, reader.sizeBytes);
        assert.equal(seen.at(-1)?.doneBytes, reader.sizeBytes);
      } finally {
        await reader.close();
      }
    }
  });

  it('writes the same image with O_DIRECT and through the page cache', async () => {
    const direct = await takesDirectIo(dir.path);
    for (const seq of [Math.floor((stream.nextSeq - 1) / 3), stream.nextSeq - 1]) {
      const reader = stream.openReader(seq);
      try {
        const viaDirect = await materialise(reader, join(dir.path, `d${seq}.img`));
        const viaCache = await materialise(reader, join(dir.path, `b${seq}.img`), { directIo: false });
        assert.equal(sha256(await readFile(join(dir.path, `d${seq}.img`))), hashAt(seq), `direct image at seq ${seq}`);
        assert.equal(sha256(await readFile(join(dir.path, `b${seq}.img`))), hashAt(seq), `buffered image at seq ${seq}`);
        assert.equal(viaDirect.writtenBytes, viaCache.writtenBytes);
        assert.equal(viaCache.directBytes, 0);
        // Every written run is whole 64 KiB blocks except at the end of the disk.
        if (direct) assert.ok(viaDirect.directBytes >= viaDirect.writtenBytes - 64 * 1024 && viaDirect.directBytes > 0, `${viaDirect.directBytes} of ${viaDirect.writtenBytes} bytes direct`);
        else assert.equal(viaDirect.directBytes, 0, 'this folder refuses O_DIRECT');
        assert.equal((await stat(join(dir.path, `d${seq}.img`))).blocks, (await stat(join(dir.path, `b${seq}.img`))).blocks, 'the same blocks allocated');
      } finally {
        await reader.close();
      }
    }
  });

  it('writes an odd-sized disk whole, its partial last block included', async () => {
    const d = await tempDir('materialise-odd');
    const s = await DiskStream.open(join(d.path, 'stream'), 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 }, silentLogger);
    try {
      const diskBytes = 9 * MiB + 1000;
      const data = Buffer.alloc(4 * MiB + 1000);
      for (let i = 0; i < data.length; i++) data[i] = (i % 251) + 1;
      await s.apply(prepareBatch(encodeFrame({ machine: 'm1', disk: 'disk0', firstSeq: 1, timeMs: Date.now(), diskBytes, flags: FrameFlag.ORDERED, records: [{ type: RecordType.WRITE, offset: 5 * MiB, data }] })));
      const reader = s.openReader(1);
      try {
        for (const directIo of [true, false]) {
          const out = join(d.path, `odd-${directIo}.img`);
          const r = await materialise(reader, out, { directIo });
          const img = await readFile(out);
          assert.equal(img.length, diskBytes);
          assert.ok(img.subarray(5 * MiB).equals(data), `the written tail, directIo ${directIo}`);
          assert.equal(img.subarray(0, 5 * MiB).some((b) => b !== 0), false);
          assert.equal(r.writtenBytes, data.length);
          if (directIo && (await takesDirectIo(d.path))) assert.equal(r.directBytes, 4 * MiB, 'whole blocks direct, the partial last block buffered');
        }
        if (hasQemuImg()) {
          // Worth reading over NBD (5 MiB of holes, 4 MiB of data), but qemu takes raw slices in
          // whole sectors only; qcow2 rounds the size up to 512 bytes, the bytes are the same.
          const qcow2 = join(d.path, 'odd.qcow2');
          await materialise(reader, qcow2, { format: 'qcow2' });
          const back = join(d.path, 'odd-back.img');
          execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, back]);
          const img = await readFile(back);
          assert.equal(img.length, Math.ceil(diskBytes / 512) * 512);
          assert.ok(img.subarray(5 * MiB, diskBytes).equals(data));
          assert.equal(img.subarray(0, 5 * MiB).some((b) => b !== 0) || img.subarray(diskBytes).some((b) => b !== 0), false);
        }
      } finally {
        await reader.close();
      }
    } finally {
      await s.close();
      await d.remove();
    }
  });

  it('writes through the page cache where the filesystem refuses O_DIRECT', async (t) => {
    const ramfs = await mountRamfs(dir.path);
    if (!ramfs) return t.skip('cannot mount a ramfs here (needs root)');
    const seq = stream.nextSeq - 1;
    const reader = stream.openReader(seq);
    try {
      const out = join(ramfs.path, 'r.img');
      const r = await materialise(reader, out);
      assert.equal(r.directBytes, 0);
      assert.ok(r.writtenBytes > 0);
      assert.equal(sha256(await readFile(out)), hashAt(seq));
      if (hasQemuImg()) {
        // qemu-img gets no -t none there.
        await materialise(reader, join(ramfs.path, 'r.qcow2'), { format: 'qcow2' });
        execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', out, join(ramfs.path, 'r.qcow2')], { stdio: 'ignore' });
      }
    } finally {
      await reader.close();
      await ramfs.unmount();
    }
  });

  for (const directIo of [true, false]) it(`leaves never-written blocks as holes without reading them, and zero blocks as holes (directIo ${directIo})`, async () => {
    const d = await tempDir('materialise-sparse');
    const s = await DiskStream.open(join(d.path, 'stream'), 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 }, silentLogger);
    try {
      const diskBytes = 256 * MiB;
      const data = Buffer.alloc(MiB, 7);
      const frame = encodeFrame({
        machine: 'm1',
        disk: 'disk0',
        firstSeq: 1,
        timeMs: Date.now(),
        diskBytes,
        flags: FrameFlag.ORDERED,
        records: [
          { type: RecordType.WRITE, offset: 3 * MiB, data },
          { type: RecordType.WRITE, offset: 100 * MiB, data: Buffer.alloc(2 * MiB) },
          { type: RecordType.WRITE, offset: 200 * MiB + 4096, data },
        ],
      });
      await s.apply(prepareBatch(frame));
      const reader = s.openReader(3);
      try {
        const out = join(d.path, 'sparse.img');
        const r = await materialise(reader, out, { directIo });
        assert.ok(r.readBytes <= 5 * MiB, `read ${r.readBytes} bytes of a disk with 4 MiB in written blocks`);
        assert.equal(r.writtenBytes, 2 * MiB + 64 * 1024, 'only the non-zero 64 KiB blocks are written');
        const st = await stat(out);
        assert.equal(st.size, diskBytes);
        assert.ok(st.blocks * 512 <= 4 * MiB, `allocated ${st.blocks * 512} bytes`);
        const img = await readFile(out);
        assert.ok(img.subarray(3 * MiB, 4 * MiB).equals(data));
        assert.ok(img.subarray(200 * MiB + 4096, 201 * MiB + 4096).equals(data));
        assert.equal(img.subarray(0, 3 * MiB).some((b) => b !== 0), false);
      } finally {
        await reader.close();
      }
    } finally {
      await s.close();
      await d.remove();
    }
  });

  it('writes qcow2 through qemu-img, equal to the raw image', { skip: hasQemuImg() ? false : 'qemu-img not installed' }, async () => {
    const seq = Math.floor((stream.nextSeq - 1) / 2);
    const reader = stream.openReader(seq);
    try {
      const out = join(dir.path, 'half.qcow2');
      const r = await materialise(reader, out, { format: 'qcow2' });
      assert.equal(r.format, 'qcow2');
      const raw = join(dir.path, 'half-back.img');
      execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', out, raw]);
      assert.equal(sha256(await readFile(raw)), hashAt(seq));
    } finally {
      await reader.close();
    }
  });

  it('writes qcow2 of a sparse disk over NBD skipping long holes, and of a fragmented one through a raw image', { skip: hasQemuImg() ? false : 'qemu-img not installed' }, async () => {
    const d = await tempDir('materialise-qcow2');
    try {
      const cases = [
        // Through NBD: the 176 MiB hole is skipped by qemu-img, the 8 MiB one between data read with it.
        { name: 'sparse', diskBytes: 208 * MiB, writes: [[0, 8 * MiB], [16 * MiB, 8 * MiB], [200 * MiB, 8 * MiB]], readBytes: 32 * MiB },
        // A 64 KiB write every 4 MiB, each across two 64 KiB blocks: NBD would read 32 times
        // the data, so a raw image is written first, reading only the written blocks.
        { name: 'fragmented', diskBytes: 512 * MiB, writes: Array.from({ length: 128 }, (_, k) => [k * 4 * MiB + 8192, 64 * 1024]), readBytes: 128 * 128 * 1024 },
      ];
      for (const c of cases) {
        const s = await DiskStream.open(join(d.path, c.name), 'm1', 'disk0', { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 }, silentLogger);
        try {
          const records = c.writes.map(([offset, bytes], k) => ({ type: RecordType.WRITE, offset, data: Buffer.alloc(bytes, k + 1) }) as const);
          await s.apply(prepareBatch(encodeFrame({ machine: 'm1', disk: 'disk0', firstSeq: 1, timeMs: Date.now(), diskBytes: c.diskBytes, flags: FrameFlag.ORDERED, records })));
          const reader = s.openReader(records.length);
          try {
            const raw = join(d.path, `${c.name}.img`);
            const qcow2 = join(d.path, `${c.name}.qcow2`);
            await materialise(reader, raw);
            const seen: MaterialiseProgress[] = [];
            const r = await materialise(reader, qcow2, { format: 'qcow2', onProgress: (p) => seen.push(p) });
            assert.equal(r.readBytes, c.readBytes, `${c.name}: bytes read`);
            assert.equal(seen.at(-1)?.doneBytes, c.diskBytes);
            // Exit status 0: the same disk contents.
            execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, qcow2], { stdio: 'ignore' });
            assert.ok(r.writtenBytes < 32 * MiB, `${c.name}: a qcow2 file of ${r.writtenBytes} bytes`);
          } finally {
            await reader.close();
          }
        } finally {
          await s.close();
        }
      }
    } finally {
      await d.remove();
    }
  });

  it('reports a missing qemu-img and leaves no file behind', async () => {
    const reader = stream.openReader(1);
    try {
      const out = join(dir.path, 'no-qemu.qcow2');
      await assert.rejects(materialise(reader, out, { format: 'qcow2', qemuImgPath: join(dir.path, 'no-such-qemu-img') }), (err: Error & { hint?: string }) => {
        assert.match(err.message, /qemu-img not found/);
        assert.match(err.hint ?? '', /qemu-utils/);
        return true;
      });
      await assert.rejects(stat(out), { code: 'ENOENT' });
      await assert.rejects(stat(`${out}.tmp-${process.pid}`), { code: 'ENOENT' });
    } finally {
      await reader.close();
    }
  });

  it('leaves no file behind when the reader fails', async () => {
    const reader = stream.openReader(stream.nextSeq - 1);
    await reader.close();
    const out = join(dir.path, 'closed.img');
    await assert.rejects(materialise(reader, out), /closed/);
    await assert.rejects(stat(out), { code: 'ENOENT' });
    await assert.rejects(stat(`${out}.tmp-${process.pid}`), { code: 'ENOENT' });
  });
});
