/**
 * Views benchmark: time to first byte of a view (open through the API, read 4 KiB) for a
 * 1 GiB and a 16 GiB disk, and materialisation MiB/s beside `qemu-img convert` of a plain raw
 * image of the same size (medians of several rounds, see materialise-vs-qemu.ts).
 * Run: `node --import tsx bench/views/views.ts [SIZE_GIB_FOR_COPY] [--rounds N] [--no-qcow2]`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, FrameFlag, RecordType, type BatchRecord } from '../../core/wire/frame.ts';
import { openMasterTarget, type MasterTargetApp } from '../../master-target/server.ts';
import { materialise } from '../../master-target/views/materialise.ts';
import { tempDir } from '../../test/master-target/support.ts';
import { compare, countFlushes, type Contender } from './materialise-vs-qemu.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BATCH_BYTES = 16 * MiB;
const fill = randomBytes(BATCH_BYTES);

async function post(mt: MasterTargetApp, machine: string, firstSeq: number, diskBytes: number, records: BatchRecord[], timeMs: number): Promise<void> {
  const body = encodeFrame({ machine, disk: 'disk0', firstSeq, timeMs, diskBytes, flags: FrameFlag.ORDERED, records });
  const res = await mt.app.request(`/v1/streams/${machine}/disk0/batches`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  if (res.status !== 200) throw new Error(`batch refused: ${res.status} ${await res.text()}`);
}

/** Writes `bytes` of data from offset 0 in 1 MiB records; returns the next seq. */
async function writeDisk(mt: MasterTargetApp, machine: string, diskBytes: number, bytes: number, seq: number, timeMs: number, tag: number): Promise<number> {
  for (let at = 0; at < bytes; at += BATCH_BYTES) {
    const records: BatchRecord[] = [];
    for (let o = 0; o < Math.min(BATCH_BYTES, bytes - at); o += MiB) {
      const data = fill.subarray(o, o + MiB);
      data[0] = tag;
      records.push({ type: RecordType.WRITE, offset: at + o, data });
    }
    await post(mt, machine, seq, diskBytes, records, timeMs);
    seq += records.length;
  }
  return seq;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '5' }, 'no-qcow2': { type: 'boolean', default: false } } });
  const copyGiB = Number(positionals[0] ?? 1);
  const rounds = Number(values.rounds);
  const withQcow2 = !values['no-qcow2'];
  const dir = await tempDir('bench-views');
  const mt = await openMasterTarget({ dataDir: dir.path, retentionSeconds: 86400 * 365, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 } });
  try {
    const t0 = Date.now() - 120_000;
    process.stdout.write('time to first byte of a view (API open + first 4 KiB over NBD with qemu-io, and in-process)\n');
    for (const gib of [1, 16]) {
      const machine = `ttfb${gib}`;
      // Some data, then overwrites after the point so that the view has undo to lay back.
      let seq = await writeDisk(mt, machine, gib * GiB, 64 * MiB, 1, t0, 1);
      const point = seq - 1;
      await writeDisk(mt, machine, gib * GiB, 64 * MiB, seq, t0 + 1000, 2);
      const started = performance.now();
      const res = await mt.app.request(`/v1/machines/${machine}/disks/disk0/views`, { method: 'POST', body: JSON.stringify({ at: String(point) }), headers: { 'content-type': 'application/json' } });
      const view = (await res.json()) as { id: string; uri: string };
      const openedMs = performance.now() - started;
      const spawnStart = performance.now();
      await run('qemu-io', ['-f', 'raw', '-r', view.uri, '-c', 'read 0 4k']);
      const qemuMs = performance.now() - spawnStart;
      const reader = mt.store.get(machine, 'disk0')!.openReader(point);
      const r0 = performance.now();
      await reader.read(0, 4096);
      const readMs = performance.now() - r0;
      await reader.close();
      process.stdout.write(`  ${String(gib).padStart(2)} GiB disk: view opened in ${openedMs.toFixed(1)} ms; first 4 KiB in-process ${readMs.toFixed(2)} ms; qemu-io process (start, connect, read) ${qemuMs.toFixed(0)} ms; total to first byte ${(openedMs + qemuMs).toFixed(0)} ms\n`);
      await mt.app.request(`/v1/views/${view.id}`, { method: 'DELETE' });
    }

    const size = copyGiB * GiB;
    let seq = await writeDisk(mt, 'copy', size, size, 1, t0, 3);
    const point = seq - 1;
    seq = await writeDisk(mt, 'copy', size, size / 8, seq, t0 + 1000, 4);
    const stream = mt.store.get('copy', 'disk0')!;
    const plain = join(dir.path, 'plain.img');
    await copyFile(join(dir.path, 'streams/copy/disk0/replica.img'), plain);
    // Both sources are read once before the rounds, so that every contender reads from the page cache.
    await run('sh', ['-c', `find ${join(dir.path, 'streams/copy/disk0')} ${plain} -type f -exec cat {} + > /dev/null`]);

    const small = join(dir.path, 'small.img');
    await run('sh', ['-c', `head -c ${64 * MiB} ${plain} > ${small}`]);
    const flushes = await countFlushes(['convert', '-f', 'raw', '-O', 'raw', small, `${small}.out`], dir.path);
    await rm(`${small}.out`, { force: true });
    const flushesDirect = await countFlushes(['convert', '-t', 'none', '-f', 'raw', '-O', 'raw', small, `${small}.out`], dir.path);
    await rm(`${small}.out`, { force: true });
    process.stdout.write(
      flushes === undefined
        ? '\nstrace is not installed: the peers\' flushes were not checked\n'
        : `\nstrace: qemu-img convert calls fsync/fdatasync ${flushes} times; with -t none (O_DIRECT) ${flushesDirect} times\n`,
    );

    const materialiseWith = (format: 'raw' | 'qcow2') => async (out: string) => {
      const reader = stream.openReader(point);
      try {
        await materialise(reader, out, { format });
      } finally {
        await reader.close();
      }
    };
    const qemu = (args: string[]) => async (out: string) => void (await run('qemu-img', ['convert', ...args, plain, out]));
    const raw: Contender[] = [
      { name: 'tidemark materialise, raw (fdatasync, rename, dir sync)', durable: true, ours: true, run: materialiseWith('raw') },
      { name: 'qemu-img convert -O raw', durable: false, run: qemu(['-f', 'raw', '-O', 'raw']) },
      {
        name: 'qemu-img convert -O raw, then sync -d',
        durable: true,
        run: async (out) => {
          await qemu(['-f', 'raw', '-O', 'raw'])(out);
          await run('sync', ['-d', out]);
        },
      },
      { name: 'qemu-img convert -t none -O raw (O_DIRECT, fdatasync)', durable: true, likeForLike: true, run: qemu(['-t', 'none', '-f', 'raw', '-O', 'raw']) },
    ];
    const title = `materialisation of a ${copyGiB} GiB disk at a point (1/8 of it overwritten after the point) beside qemu-img convert of a plain raw image of the same size`;
    await compare(`${title}; raw`, raw, size, rounds, dir.path);
    if (withQcow2) {
      const qcow2: Contender[] = [
        { name: 'tidemark materialise, qcow2 (durable)', durable: true, ours: true, run: materialiseWith('qcow2') },
        { name: 'qemu-img convert -O qcow2', durable: false, run: qemu(['-f', 'raw', '-O', 'qcow2']) },
        { name: 'qemu-img convert -t none -O qcow2 (O_DIRECT, fdatasync)', durable: true, likeForLike: true, run: qemu(['-t', 'none', '-f', 'raw', '-O', 'qcow2']) },
      ];
      await compare(`${title}; qcow2`, qcow2, size, rounds, dir.path);
    }
  } finally {
    await mt.close();
    await dir.remove();
  }
}

await main();
