/**
 * Materialisation beside `qemu-img convert` of a plain image of the same size, fairly: several
 * rounds, the order of the contenders rotated each round, `sync` and a settle before every
 * timed run, medians reported with the load. The peers differ in what they promise when they
 * exit: plain `qemu-img convert` leaves its output in the page cache (it calls no fdatasync),
 * so it is shown, but the like-for-like peer is `qemu-img convert -t none` (O_DIRECT, then
 * fdatasync: durable, as materialise is); `convert` followed by `sync -d` is durable too.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { table } from '../../cli/table.ts';
import { loadText, settle } from './settle.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface Contender {
  name: string;
  /** Whether the output is on stable storage when the run ends. */
  durable: boolean;
  /** Ours (the others are peers). */
  ours?: boolean;
  /** The peer the goal is judged against. */
  likeForLike?: boolean;
  /** Writes `out` and returns when done; timed by the caller. */
  run(out: string): Promise<void>;
}

export interface ComparisonResult {
  name: string;
  durable: boolean;
  ours: boolean;
  likeForLike: boolean;
  seconds: number[];
  medianSeconds: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs every contender `rounds` times (order rotated each round) and prints the table. */
export async function compare(title: string, contenders: Contender[], sizeBytes: number, rounds: number, dir: string): Promise<ComparisonResult[]> {
  const seconds = contenders.map(() => [] as number[]);
  const loads: string[] = [];
  for (let round = 0; round < rounds; round++) {
    loads.push(loadText());
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length;
      const out = join(dir, `out-${i}-${round}`);
      await settle();
      const t0 = performance.now();
      await contenders[i].run(out);
      seconds[i].push((performance.now() - t0) / 1000);
      await rm(out, { force: true });
    }
  }
  loads.push(loadText());
  await settle();
  const results = contenders.map((c, i) => ({ name: c.name, durable: c.durable, ours: !!c.ours, likeForLike: !!c.likeForLike, seconds: seconds[i], medianSeconds: median(seconds[i]) }));
  const ours = results.find((r) => r.ours)!;
  const rows = results.map((r) => [
    r.name,
    r.durable ? 'yes' : 'no',
    r.seconds.map((s) => s.toFixed(2)).join(' '),
    r.medianSeconds.toFixed(2),
    (sizeBytes / MiB / r.medianSeconds).toFixed(0),
    r.ours ? '' : `${(r.medianSeconds / ours.medianSeconds).toFixed(2)}x${r.likeForLike ? ' (like for like)' : ''}`,
  ]);
  process.stdout.write(`\n${title}\n`);
  process.stdout.write(`load average (1 / 5 / 15 min) at each round's start and at the end: ${loads.join(', ')}\n`);
  process.stdout.write(table(['what', 'durable', `seconds, ${rounds} rounds`, 'median s', 'MiB/s', 'ours against it'], rows));
  return results;
}

/** How many fdatasync/fsync calls `qemu-img convert ARGS` makes, by strace; undefined without strace. */
export async function countFlushes(args: string[], dir: string): Promise<number | undefined> {
  const traceFile = join(dir, 'qemu-img.strace');
  try {
    await run('strace', ['-f', '-e', 'trace=fsync,fdatasync,sync_file_range,syncfs', '-o', traceFile, 'qemu-img', ...args]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const trace = await readFile(traceFile, 'utf8');
  await rm(traceFile, { force: true });
  return trace.split('\n').filter((l) => /\b(fsync|fdatasync|sync_file_range|syncfs)\(/.test(l)).length;
}
