/**
 * Master target reads: export of a 1 GiB image over HTTP (at the newest seq, and at a point
 * 10% of the blocks ago, whose bytes come partly from the undo journal) written to a file by
 * `curl`, beside `cp` of a plain 1 GiB file; and the time to open a point-in-time reader and read its
 * first byte on 1 GiB and 16 GiB disks.
 *
 * Usage: node --import tsx bench/master-target/export.ts [--rounds N]
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { table } from '../../cli/table.ts';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, FrameFlag, RecordType, type BatchRecord } from '../../core/wire/frame.ts';
import { prepareBatch } from '../../master-target/batch.ts';
import { DiskStream } from '../../master-target/disk-stream.ts';
import { startMasterTarget } from '../../master-target/server.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BLOCK = 64 * 1024;
const LIMITS = { segmentBytes: 64 * MiB, segmentMaxAgeMs: 3600_000 };

const run = promisify(execFile);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}

/** Applies `records` to `stream` in 16 MiB ORDERED batches (every seq is a point). */
async function applyRecords(stream: DiskStream, diskBytes: number, records: BatchRecord[]): Promise<void> {
  const perBatch = Math.max(1, Math.floor((16 * MiB) / BLOCK));
  for (let i = 0; i < records.length; i += perBatch) {
    const frame = encodeFrame({
      machine: 'bench',
      disk: 'disk0',
      firstSeq: stream.nextSeq,
      timeMs: Date.now(),
      diskBytes,
      flags: FrameFlag.ORDERED,
      records: records.slice(i, i + perBatch),
      compress: false,
    });
    const r = await stream.apply(prepareBatch(frame));
    if (r.status !== 'applied') throw new Error(`batch not applied: ${r.status}`);
  }
}

/** A 1 GiB stream fully written with incompressible data, then 10% of its blocks overwritten. Returns the seq before the overwrite. */
async function makeStream(dataDir: string, diskBytes: number): Promise<number> {
  const stream = await DiskStream.open(join(dataDir, 'streams', 'bench', 'disk0'), 'bench', 'disk0', LIMITS, silentLogger);
  const pool = randomBytes(64 * MiB);
  const data = (i: number) => pool.subarray((i * BLOCK) % pool.length, ((i * BLOCK) % pool.length) + BLOCK);
  const fill: BatchRecord[] = [];
  for (let b = 0; b < diskBytes / BLOCK; b++) fill.push({ type: RecordType.WRITE, offset: b * BLOCK, data: data(b) });
  await applyRecords(stream, diskBytes, fill);
  const before = stream.nextSeq - 1;
  const changed: BatchRecord[] = [];
  for (let k = 0; k < diskBytes / BLOCK / 10; k++) {
    const b = Math.floor(Math.random() * (diskBytes / BLOCK));
    changed.push({ type: RecordType.WRITE, offset: b * BLOCK, data: data(b + 7) });
  }
  await applyRecords(stream, diskBytes, changed);
  await stream.close();
  return before;
}

/** Time to open a reader and read its first 4 KiB, on a sparse disk of `diskBytes` with a few writes. */
async function firstByte(dir: string, diskBytes: number, rounds: number): Promise<{ openMs: number; firstByteMs: number }> {
  const stream = await DiskStream.open(join(dir, `sparse-${diskBytes}`), 'bench', 'disk0', LIMITS, silentLogger);
  const records: BatchRecord[] = [];
  for (let i = 0; i < 64; i++) records.push({ type: RecordType.WRITE, offset: Math.floor((i * diskBytes) / 64 / BLOCK) * BLOCK, data: randomBytes(BLOCK) });
  await applyRecords(stream, diskBytes, records);
  await applyRecords(stream, diskBytes, records.map((r) => ({ ...r, data: randomBytes(BLOCK) }) as BatchRecord));
  const opens: number[] = [];
  const firsts: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = process.hrtime.bigint();
    const reader = stream.openReader(64);
    opens.push(seconds(started) * 1000);
    await reader.read(0, 4096);
    firsts.push(seconds(started) * 1000);
    await reader.close();
  }
  await stream.close();
  return { openMs: median(opens), firstByteMs: median(firsts) };
}

export async function exportBench(argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { rounds: { type: 'string', default: '3' } }, allowPositionals: true });
  const rounds = Number(values.rounds);
  await loadHashing();
  const dir = await mkdtemp(join(tmpdir(), 'tm-bench-export-'));
  try {
    const dataDir = join(dir, 'mt');
    process.stderr.write('bench export: writing a 1 GiB stream\n');
    const before = await makeStream(dataDir, GiB);
    const mt = await startMasterTarget({ dataDir, host: '127.0.0.1', port: 0, retentionSeconds: 100 * 365 * 86400, log: silentLogger });
    const rows: string[][] = [];
    try {
      const out = join(dir, 'export.img');
      for (const [label, at] of [['newest seq', 'latest'], ['10% of blocks ago', String(before)]] as const) {
        const rates: number[] = [];
        for (let i = 0; i < rounds; i++) {
          const started = process.hrtime.bigint();
          // curl in its own process, as an operator's client would be.
          await run('curl', ['-sf', '-o', out, `${mt.url}/v1/machines/bench/disks/disk0/image?at=${at}`]);
          rates.push(GiB / MiB / seconds(started));
          if ((await stat(out)).size !== GiB) throw new Error('export has the wrong size');
          await rm(out);
        }
        rows.push([`HTTP export to a file with curl, ${label}`, median(rates).toFixed(0)]);
      }
    } finally {
      await mt.close();
    }
    const cpRates: number[] = [];
    const replica = join(dataDir, 'streams', 'bench', 'disk0', 'replica.img');
    for (let i = 0; i < rounds; i++) {
      const started = process.hrtime.bigint();
      execFileSync('cp', [replica, join(dir, 'cp.img')]);
      cpRates.push(GiB / MiB / seconds(started));
      await rm(join(dir, 'cp.img'));
    }
    rows.push(['cp of the plain 1 GiB replica file (peer)', median(cpRates).toFixed(0)]);
    process.stdout.write(`\nMaster target export of a 1 GiB image (median of ${rounds})\n`);
    process.stdout.write(table(['what', 'MiB/s'], rows));

    const fb: string[][] = [];
    for (const size of [GiB, 16 * GiB]) {
      const t = await firstByte(dir, size, Math.max(5, rounds));
      fb.push([`${size / GiB} GiB`, t.openMs.toFixed(2), t.firstByteMs.toFixed(2)]);
    }
    process.stdout.write('\nPoint-in-time reader: open and first 4 KiB (median)\n');
    process.stdout.write(table(['disk', 'open ms', 'first byte ms'], fb));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await exportBench();
