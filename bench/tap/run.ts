/**
 * Tap-mode benchmark (issue 3): writes and reads through the agent's NBD export beside
 * `nbdkit file` serving the same kind of file to the same client (fio's nbd engine), the
 * servers taking turns for several rounds; then replication lag (write acknowledged at the
 * agent → applied at the master target) at steady rates.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, open, writeFile } from 'node:fs/promises';
import { tmpdir, cpus, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.ts';
import { startTidemark, waitUntil } from '../../test/helpers/tidemark-process.ts';
import { table } from '../../cli/table.ts';
import { measureLag } from './lag.ts';
import { cpuSeconds } from '../cpu.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/**
 * Size of both servers' files (`TM_BENCH_FILE_GIB`): 8 GiB by default, so that sequential
 * writes do not come back over their own unshipped data within one run (5 s at 1.2 GB/s
 * rewrite the start of a 4 GiB file, and the tap then copies unshipped data aside first).
 */
const SIZE_BYTES = Number(process.env.TM_BENCH_FILE_GIB ?? 8) * 1024 * MiB;
const ROUNDS = Number(process.env.TM_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.TM_BENCH_SECONDS ?? 4);
/** `TM_BENCH_LAG=0` skips the lag runs; `TM_BENCH_ONLY=randwrite-4k,write-1m` runs only those workloads (rw-bs). */
const LAG = process.env.TM_BENCH_LAG !== '0';
const ONLY = process.env.TM_BENCH_ONLY?.split(',').filter(Boolean);
/** Extra node arguments for the agent alone, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const AGENT_NODE_ARGS = process.env.TM_BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

async function fio(port: number, rw: string, bs: string, iodepth: number): Promise<number> {
  const { stdout } = await run('fio', [
    '--name=bench', '--ioengine=nbd', `--uri=nbd://127.0.0.1:${port}/disk0`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${iodepth}`,
    `--size=${SIZE_BYTES}`, '--ramp_time=1', `--runtime=${SECONDS}`, '--time_based', '--output-format=json',
  ], { maxBuffer: 16 * MiB });
  const job = JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0];
  const side = rw.includes('read') ? job.read : job.write;
  return bs === '4k' ? side.iops : side.bw_bytes / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function sparseFile(path: string): Promise<void> {
  const fh = await open(path, 'w');
  await fh.truncate(SIZE_BYTES);
  await fh.close();
}

/**
 * Reads a file once, 1 MiB at a time, as the tap's initial sync reads its disk: both servers'
 * files then start the runs with the same page-cache state (on this kernel, 4 KiB writes into
 * large folios cached by a read cost several times more than writes into an unread sparse file).
 */
async function readOnce(path: string): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.allocUnsafe(MiB);
  for (let at = 0; at < SIZE_BYTES; at += MiB) await fh.read(buf, 0, MiB, at);
  await fh.close();
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tm-tapbench-'));
  const env = { TIDEMARK_LOG_LEVEL: 'warn' };
  const [psPort, mtPort, tapPort, kitPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const mtUrl = `http://127.0.0.1:${mtPort}`;
  // The runs write tens of GB: a journal cap keeps the undo journal from filling the machine's disk.
  const mt = startTidemark(['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`, '--journal-max', '8G'], env);
  const psArgs = ['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', mtUrl];
  let ps = startTidemark(psArgs, env);
  await mt.waitFor(/listening on/);
  await ps.waitFor(/listening on/);
  await sparseFile(join(dir, 'tap.img'));
  await sparseFile(join(dir, 'kit.img'));
  const agent = startTidemark(['agent', '--state', join(dir, 'agent'), '--process-server', `http://127.0.0.1:${psPort}`, '--machine', 'bench',
    '--disk', join(dir, 'tap.img'), '--mode', 'tap', '--nbd', `127.0.0.1:${tapPort}`, '--max-log-bytes', '4G'], env, AGENT_NODE_ARGS);
  await agent.waitFor(/serving 1 disk/);
  const kit: ChildProcess = spawn('nbdkit', ['--foreground', '--exit-with-parent', '-i', '127.0.0.1', '-p', String(kitPort), 'file', join(dir, 'kit.img')], { stdio: 'ignore' });
  // Caught up: nothing spooled at the process server and the master target's position still for a second.
  // A stream STALLED for 30 s (the master target refusing its batches) fails the run with the reason.
  const appliedAll = async () => {
    let last = -1;
    let stableSince = 0;
    let stalledSince = 0;
    for (const deadline = Date.now() + 600_000; ; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the master target to catch up');
      const d = await fetch(`http://127.0.0.1:${psPort}/v1/status`)
        .then(async (r) => ((await r.json()) as { disks: Array<{ backlogBytes: number; appliedSeq: number; receivedSeq: number; state: string; error?: string }> }).disks[0])
        .catch(() => undefined);
      if (d?.state === 'STALLED') {
        stalledSince ||= Date.now();
        if (Date.now() - stalledSince > 30_000) throw new Error(`replication stalled: ${d.error ?? 'no reason given'}`);
      } else stalledSince = 0;
      if (!d || d.backlogBytes !== 0 || d.appliedSeq !== d.receivedSeq) continue;
      if (d.appliedSeq !== last) {
        last = d.appliedSeq;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > 1000) return;
    }
  };
  let failed = false;
  try {
    await waitUntil('the initial sync', async () => {
      const r = await fetch(`${mtUrl}/v1/machines/bench/disks/disk0/points`);
      return r.ok && ((await r.json()) as { points: unknown[] }).points.length ? true : undefined;
    }, 120_000);
    await readOnce(join(dir, 'kit.img'));
    await new Promise((r) => setTimeout(r, 500));
    const loadAtStart = loadavg()[0];
    // Lag first, on a quiet pipeline; the throughput runs below leave backlogs behind them.
    const lagRows: string[][] = [];
    await appliedAll();
    const cpuOf = () => Promise.all([agent, ps, mt].map((p) => cpuSeconds(p.child.pid)));
    for (const rate of LAG ? [20, 50, 100, 200, 400] : []) {
      const cpuBefore = await cpuOf();
      const r = await measureLag({ nbdHost: '127.0.0.1', nbdPort: tapPort, mtUrl, machine: 'bench', rateMBps: rate, seconds: 5, writeBytes: 64 * 1024, maxInFlight: 16 });
      await appliedAll();
      // Everything the writes cost, shipped and applied (less the idle second appliedAll waits).
      const perGiB = (await cpuOf()).map((c, i) => ((c - cpuBefore[i]) / ((r.writes * 64 * 1024) / (1024 * MiB))).toFixed(1));
      lagRows.push([`${rate} MB/s`, r.achievedMBps.toFixed(1), String(r.writes), r.p50Ms.toFixed(0), r.p99Ms.toFixed(0), r.maxMs.toFixed(0), perGiB.join(' / ')]);
      process.stderr.write(`bench: lag at ${rate} MB/s: p50 ${r.p50Ms.toFixed(0)} ms, p99 ${r.p99Ms.toFixed(0)} ms\n`);
    }
    if (LAG) {
      process.stdout.write('\nReplication lag, write acknowledged at the agent → applied at the master target (64 KiB random writes, one NBD connection, up to 16 in flight, 5 s each; CPU seconds per GiB written, until applied)\n');
      process.stdout.write(table(['target rate', 'achieved MB/s', 'writes', 'p50 ms', 'p99 ms', 'max ms', 'CPU s/GiB agent / PS / MT'], lagRows));
    }
    const workloads = [
      { name: '4 KiB random write (IOPS)', rw: 'randwrite', bs: '4k', depth: 16 },
      { name: '4 KiB random read (IOPS)', rw: 'randread', bs: '4k', depth: 16 },
      { name: '64 KiB random write (MB/s)', rw: 'randwrite', bs: '64k', depth: 16 },
      { name: '1 MiB sequential write (MB/s)', rw: 'write', bs: '1M', depth: 8 },
      { name: '1 MiB sequential read (MB/s)', rw: 'read', bs: '1M', depth: 8 },
    ].filter((w) => !ONLY || ONLY.includes(`${w.rw}-${w.bs}`.toLowerCase()));
    const rows: string[][] = [];
    /** The process server and master target at the lowest priority: standing in for their own machines. */
    const niceDownstream = (nice: number) => {
      for (const p of [ps, mt]) setPriority(p.child.pid!, nice);
    };
    for (const w of workloads) {
      const live: number[] = [];
      const niced: number[] = [];
      const paused: number[] = [];
      const theirs: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        theirs.push(await fio(kitPort, w.rw, w.bs, w.depth));
        live.push(await fio(tapPort, w.rw, w.bs, w.depth));
        if (w.rw.includes('write')) {
          await appliedAll();
          niceDownstream(19);
          niced.push(await fio(tapPort, w.rw, w.bs, w.depth));
          niceDownstream(0);
          await appliedAll();
          // The same through the tap alone: shipping paused, so only the agent's own cost counts.
          await ps.kill9();
          paused.push(await fio(tapPort, w.rw, w.bs, w.depth));
          ps = startTidemark(psArgs, env);
          await ps.waitFor(/listening on/);
          await appliedAll();
        }
      }
      const t = median(theirs);
      const fmt = (x: number) => (w.bs === '4k' ? x.toFixed(0) : x.toFixed(1));
      const o = median(live);
      const p = paused.length ? median(paused) : undefined;
      const n = niced.length ? median(niced) : undefined;
      const cell = (x: number | undefined) => (x === undefined ? ['-', '-'] : [fmt(x), (x / t).toFixed(2)]);
      rows.push([w.name, `fio nbd, 1 conn, iodepth ${w.depth}`, fmt(t), fmt(o), (o / t).toFixed(2), ...cell(n), ...cell(p)]);
      process.stderr.write(`bench: ${w.name}: nbdkit ${fmt(t)}, tidemark ${fmt(o)} (downstream niced: ${cell(n)[0]}, shipping paused: ${cell(p)[0]})\n`);
    }
    process.stdout.write(`\nTap mode through the NBD export vs nbdkit file (${SIZE_BYTES / 1024 / MiB} GiB file read once beforehand by both, ${cpus().length} cores, load ${loadAtStart.toFixed(1)} at start and ${loadavg()[0].toFixed(1)} at the end, median of ${ROUNDS} rounds of ${SECONDS} s, servers taking turns; "replicating" has the process server and master target working on the same cores at the same priority, "downstream niced" at nice 19, standing in for their own machines)\n`);
    process.stdout.write(table(['workload', 'client', 'nbdkit file', 'tap, replicating', 'ratio', 'tap, downstream niced', 'ratio', 'tap, shipping paused', 'ratio'], rows));

  } catch (err) {
    // Keep what explains a failure: each process's output (the process server's since its
    // last start) beside the agent's state and both servers' data.
    failed = true;
    for (const [name, p] of [['agent', agent], ['process-server', ps], ['master-target', mt]] as const) {
      await writeFile(join(dir, `${name}.log`), p.stdout() + p.stderr());
    }
    process.stderr.write(`bench: failed; logs and data kept in ${dir}\n`);
    throw err;
  } finally {
    kit.kill();
    await agent.stop();
    await ps.stop();
    await mt.stop();
    if (!failed) await rm(dir, { recursive: true, force: true });
  }
}

export const tapBench = main;
