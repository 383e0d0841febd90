/**
 * NBD server benchmark: our file export against `nbdkit file` on an identical file, driven by
 * fio's nbd engine (one connection) and nbdcopy (several connections). The servers take turns
 * on every workload, for several rounds; the table shows the median and every round.
 *
 *   node --import tsx bench/nbd/run.ts [--rounds 3] [--seconds 3] [--size-mib 1024] [--sync-max-bytes N]
 *
 * Not a test: numbers depend on the machine and on whatever else it runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '1024' },
    /** Passed to our file export (its default when absent). */
    'sync-max-bytes': { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const SIZE_BYTES = Number(args['size-mib']) * 1024 * 1024;

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
}

interface Workload {
  name: string;
  client: string;
  connections: number;
  /** 'MB/s' or 'IOPS' */
  unit: string;
  measure(port: number): Promise<number>;
}

function fio(rw: string, bs: string, iodepth: number, unit: 'iops' | 'bw'): (port: number) => Promise<number> {
  return async (port) => {
    const out = await capture('fio', [
      '--name=bench',
      '--ioengine=nbd',
      `--uri=nbd://127.0.0.1:${port}/disk0`,
      `--rw=${rw}`,
      `--bs=${bs}`,
      `--iodepth=${iodepth}`,
      `--size=${SIZE_BYTES}`,
      '--ramp_time=1',
      `--runtime=${SECONDS}`,
      '--time_based',
      '--output-format=json',
    ]);
    const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
    const side = rw.includes('read') ? job.read : job.write;
    return unit === 'iops' ? side.iops : (side.bw_bytes ?? side.bw * 1024) / 1e6;
  };
}

const WORKLOADS: Workload[] = [
  { name: '4 KiB random write', client: 'fio nbd, iodepth 16', connections: 1, unit: 'IOPS', measure: fio('randwrite', '4k', 16, 'iops') },
  { name: '4 KiB random read', client: 'fio nbd, iodepth 16', connections: 1, unit: 'IOPS', measure: fio('randread', '4k', 16, 'iops') },
  { name: '1 MiB sequential write', client: 'fio nbd, iodepth 8', connections: 1, unit: 'MB/s', measure: fio('write', '1M', 8, 'bw') },
  { name: '1 MiB sequential read', client: 'fio nbd, iodepth 8', connections: 1, unit: 'MB/s', measure: fio('read', '1M', 8, 'bw') },
  {
    name: 'whole image read',
    client: 'nbdcopy to null:',
    connections: 4,
    unit: 'MB/s',
    async measure(port) {
      const start = process.hrtime.bigint();
      await capture('nbdcopy', ['--connections=4', `nbd://127.0.0.1:${port}/disk0`, 'null:']);
      return SIZE_BYTES / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9);
    },
  },
];

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-nbd-bench-'));
  const servers: Server[] = [];
  try {
    const ours = join(dir, 'tidemark.img');
    const theirs = join(dir, 'nbdkit.img');
    await makeImage(ours);
    await makeImage(theirs);
    servers.push(await startOurs(ours));
    servers.push(await startNbdkit(theirs));

    console.log(
      `NBD file export, ${SIZE_BYTES / 2 ** 20} MiB image, ${ROUNDS} rounds of ${SECONDS} s (+1 s ramp), ` +
        `${cpus().length} cores, load ${loadavg()[0].toFixed(2)} at start`,
    );
    const results = new Map<string, number[]>();
    /** Server CPU seconds per unit of work (per op, or per MB), which load on the machine disturbs less. */
    const cpuCosts = new Map<string, number[]>();
    const add = (m: Map<string, number[]>, key: string, x: number) => m.set(key, [...(m.get(key) ?? []), x]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of WORKLOADS) {
        // Alternate who goes first so that neither always meets a warmer cache.
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const s of order) {
          const key = `${w.name}|${s.name}`;
          const cpuBefore = await cpuSeconds(s.child.pid!);
          const wallBefore = process.hrtime.bigint();
          const result = await w.measure(s.port);
          const wall = Number(process.hrtime.bigint() - wallBefore) / 1e9;
          const cpu = (await cpuSeconds(s.child.pid!)) - cpuBefore;
          add(results, key, result);
          add(cpuCosts, key, cpu / wall / result);
        }
      }
    }

    const rows = [
      ['workload', 'client', 'conns', 'unit', 'tidemark (median; rounds)', 'nbdkit file (median; rounds)', 'ratio', 'server CPU per op or MB, tidemark/nbdkit'],
    ];
    for (const w of WORKLOADS) {
      const a = results.get(`${w.name}|tidemark`)!;
      const b = results.get(`${w.name}|nbdkit`)!;
      const ca = median(cpuCosts.get(`${w.name}|tidemark`)!);
      const cb = median(cpuCosts.get(`${w.name}|nbdkit`)!);
      rows.push([
        w.name,
        w.client,
        String(w.connections),
        w.unit,
        `${fmt(median(a))}; ${a.map(fmt).join(' ')}`,
        `${fmt(median(b))}; ${b.map(fmt).join(' ')}`,
        `${(median(a) / median(b)).toFixed(2)}x`,
        `${fmt(ca * 1e6)} / ${fmt(cb * 1e6)} µs (${(ca / cb).toFixed(2)}x)`,
      ]);
    }
    printTable(rows);
    console.log(`finished at load ${loadavg()[0].toFixed(2)}`);
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

/** An image of random bytes, written through the page cache like a used disk. */
async function makeImage(path: string): Promise<void> {
  const chunk = randomFillSync(Buffer.allocUnsafe(4 * 1024 * 1024));
  const file = await open(path, 'w');
  for (let done = 0; done < SIZE_BYTES; done += chunk.length) {
    chunk.writeUInt32LE(done >>> 0, 0);
    await file.write(chunk, 0, Math.min(chunk.length, SIZE_BYTES - done), done);
  }
  await file.close();
}

async function startOurs(path: string): Promise<Server> {
  const extra = args['sync-max-bytes'] === undefined ? [] : [args['sync-max-bytes']];
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'serve-file.ts'), path, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve-file.ts exited with ${code}`)));
    child.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim())));
  });
  return { name: 'tidemark', port, child };
}

async function startNbdkit(path: string): Promise<Server> {
  const port = await freePort();
  const child = spawn('nbdkit', ['--foreground', '--exit-with-parent', `--port=${port}`, '--ipaddr=127.0.0.1', 'file', path], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    const probe = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}`]);
    if (probe.code === 0) return { name: 'nbdkit', port, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  throw new Error('nbdkit did not start');
}

/** User plus system CPU time of a process, all its threads, in seconds (Linux). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the state field (3): utime, stime in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function run(command: string, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', (err) => resolve({ code: null, stdout, stderr: String(err) }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function capture(command: string, argv: string[]): Promise<string> {
  const r = await run(command, argv);
  if (r.code !== 0) throw new Error(`${command} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(x: number): string {
  return x >= 100 ? Math.round(x).toString() : x.toFixed(1);
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

await main();
