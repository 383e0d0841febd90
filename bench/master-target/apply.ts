/**
 * Master target apply throughput, directly on a DiskStream (no HTTP): 16 MiB batches of
 * incompressible writes, each batch durable before the next, beside `fio` writing the same
 * pattern to a plain file with an fsync per batch.
 *
 * Usage: node --import tsx bench/master-target/apply.ts [--mib N] [--rounds N] [--only initial|overwrite|small] [--batch-mib N]
 */
import { seededRandom } from '../../core/seeded-random.ts';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { table } from '../../cli/table.ts';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType, type BatchRecord } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';

const MiB = 1024 * 1024;
/** Bytes per batch (`--batch-mib`); the process server merges tap writes into batches of up to 8 MiB. */
let BATCH_BYTES = 16 * MiB;

/** Random incompressible bytes, reused as payloads (sliced) so that generating them costs nothing per run. */
const POOL = randomBytes(64 * MiB);

const rng = seededRandom;

/** Block numbers in a random order: each block once (a permutation) or drawn with repeats. */
function blockOrder(blocks: number, count: number, seed: number, distinct: boolean): number[] {
  const r = rng(seed);
  if (!distinct) return Array.from({ length: count }, () => Math.floor(r() * blocks));
  const all = Array.from({ length: blocks }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count);
}

/** Frames of 16 MiB of `writeBytes` writes at the given blocks. */
function makeFrames(diskBytes: number, writeBytes: number, blocks: number[], firstSeq: number): Buffer[] {
  const perBatch = BATCH_BYTES / writeBytes;
  const out: Buffer[] = [];
  let seq = firstSeq;
  let poolAt = 0;
  for (let i = 0; i < blocks.length; i += perBatch) {
    const records: BatchRecord[] = blocks.slice(i, i + perBatch).map((b) => {
      if (poolAt + writeBytes > POOL.length) poolAt = 0;
      const data = POOL.subarray(poolAt, poolAt + writeBytes);
      poolAt += writeBytes + 4096;
      return { type: RecordType.WRITE, offset: b * writeBytes, data };
    });
    out.push(encodeFrame({ machine: 'bench', disk: 'disk0', firstSeq: seq, timeMs: Date.now(), diskBytes, flags: 0, records, compress: false }));
    seq += records.length;
  }
  return out;
}

async function applyAll(stream: DiskStream, frames: Buffer[]): Promise<number> {
  const started = process.hrtime.bigint();
  for (const f of frames) {
    const r = await stream.apply(prepareBatch(f));
    if (r.status !== 'applied') throw new Error(`batch not applied: ${r.status}`);
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function fio(dir: string, name: string, sizeBytes: number, bs: number, prefill: boolean): number | undefined {
  const file = join(dir, `fio-${name}.img`);
  try {
    if (prefill) execFileSync('fio', ['--name=fill', `--filename=${file}`, `--size=${sizeBytes}`, '--bs=1M', '--rw=write', '--ioengine=psync', '--end_fsync=1', '--output-format=terse'], { stdio: 'ignore' });
    const out = execFileSync('fio', [
      '--name=peer', `--filename=${file}`, `--size=${sizeBytes}`, `--bs=${bs}`, '--rw=randwrite', '--norandommap=0', '--ioengine=psync',
      `--fsync=${BATCH_BYTES / bs}`, '--refill_buffers=1', '--output-format=json',
    ]).toString();
    const job = (JSON.parse(out) as { jobs: Array<{ write: { bw_bytes: number } }> }).jobs[0];
    return job.write.bw_bytes / MiB;
  } catch {
    return undefined;
  } finally {
    execFileSync('rm', ['-f', file]);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function applyBench(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { mib: { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' }, only: { type: 'string' }, 'batch-mib': { type: 'string', default: '16' } }, allowPositionals: true });
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  BATCH_BYTES = Number(values['batch-mib']) * MiB;
  await loadHashing();
  const rows: string[][] = [];
  const cases = [
    { name: '64 KiB random, fresh replica (initial sync)', writeBytes: 64 * 1024, prefill: false, key: 'initial' },
    { name: '64 KiB random, written replica (overwrite)', writeBytes: 64 * 1024, prefill: true, key: 'overwrite' },
    { name: '4 KiB random, written replica (overwrite)', writeBytes: 4096, prefill: true, key: 'small' },
  ];
  for (const c of cases.filter((x) => !values.only || x.key === values.only)) {
    const results: number[] = [];
    const peers: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'tm-bench-apply-'));
      try {
        const diskBytes = c.prefill ? mib * MiB : 4 * mib * MiB;
        const limits = { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 };
        const stream = await DiskStream.open(join(dir, 'stream'), 'bench', 'disk0', limits, silentLogger);
        let seq = 1;
        if (c.prefill) {
          const fill = makeFrames(diskBytes, MiB, Array.from({ length: diskBytes / MiB }, (_, i) => i), seq);
          await applyAll(stream, fill);
          seq = stream.nextSeq;
        }
        const bytes = c.writeBytes === 4096 ? Math.min(mib, 64) * MiB : mib * MiB;
        const blocks = blockOrder(diskBytes / c.writeBytes, bytes / c.writeBytes, 17 + round, true);
        const frames = makeFrames(diskBytes, c.writeBytes, blocks, seq);
        const seconds = await applyAll(stream, frames);
        results.push(bytes / MiB / seconds);
        await stream.close();
        const peer = fio(dir, 'peer', c.prefill ? diskBytes : bytes, c.writeBytes, c.prefill);
        if (peer !== undefined) peers.push(peer);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const ours = median(results);
    const peer = peers.length ? median(peers) : undefined;
    rows.push([c.name, ours.toFixed(0), peer === undefined ? 'n/a' : peer.toFixed(0), peer === undefined ? '' : (ours / peer).toFixed(2)]);
    process.stderr.write(`bench apply: ${c.name}: ${results.map((x) => x.toFixed(0)).join(' ')} MiB/s; fio ${peers.map((x) => x.toFixed(0)).join(' ')}\n`);
  }
  process.stdout.write(`\nMaster target apply, ${mib} MiB in ${values['batch-mib']} MiB batches (median of ${rounds})\n`);
  process.stdout.write(table(['pattern', 'apply MiB/s', `fio MiB/s (fsync per ${values['batch-mib']} MiB)`, 'ratio'], rows));
}

if (import.meta.url === `file://${process.argv[1]}`) await applyBench();
