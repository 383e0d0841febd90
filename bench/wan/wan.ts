/**
 * `npm run bench -- wan`: what the WAN link costs, and how much one process server carries.
 *
 * 1. WAN bytes per changed byte: machines send a seeded, realistic mix of changed 64 KiB
 *    blocks (zero, random, text, and blocks shared between machines) as plain agent frames
 *    through a process server to a master target (each its own process); the bytes that
 *    crossed to the master target are set beside `lz4 -1` and `zstd -1` run on the same
 *    changed data.
 * 2. Throughput: 50 simulated agents post at once (1 MiB frames, the same mix); MB/s of changed
 *    data from the first post until the master target applied everything.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { parseMetrics } from '../../core/metrics.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { MIX_BLOCK_BYTES, mixedBlocks, sharedPool, DEFAULT_MIX } from '../../test/helpers/block-mix.ts';
import { freePort } from '../../test/helpers/ports.ts';
import { startTidemark, waitUntil, type Running } from '../../test/helpers/tidemark-process.ts';
import { cpuTimes } from '../cpu.ts';

const TOKEN = 'bench-wan';
const auth = { authorization: `Bearer ${TOKEN}` };
const MiB = 1024 * 1024;
const RATIO_MACHINES = Number(process.env.WAN_MACHINES ?? 8);
const RATIO_BLOCKS = Number(process.env.WAN_BLOCKS ?? 256);
const AGENTS = Number(process.env.WAN_AGENTS ?? 50);
const AGENT_MIB = Number(process.env.WAN_AGENT_MIB ?? 8);
const BLOCKS_PER_FRAME = 16;
/** Set to a folder to have the process server and master target of part 2 write V8 CPU profiles there. */
const CPU_PROF_DIR = process.env.WAN_CPU_PROF_DIR;

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method: 'POST', agent: keepAlive, headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function framesOf(machine: string, blocks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < blocks.length; i += BLOCKS_PER_FRAME) {
    out.push(encodeFrame({
      machine, disk: 'disk0', firstSeq: i + 1, timeMs: Date.now(), diskBytes: blocks.length * MIX_BLOCK_BYTES, compress: false,
      records: blocks.slice(i, i + BLOCKS_PER_FRAME).map((data, k) => ({ type: RecordType.WRITE, offset: (i + k) * MIX_BLOCK_BYTES, data })),
    }));
  }
  return out;
}

interface Stack {
  psUrl: string;
  mtUrl: string;
  mt: Running;
  ps: Running;
}

async function startStack(dir: string, nodeArgs: string[] = []): Promise<Stack> {
  const [mtPort, psPort] = [await freePort(), await freePort()];
  const env = { TIDEMARK_TOKEN: TOKEN, TIDEMARK_LOG_LEVEL: 'warn' };
  const mt = startTidemark(['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`, '--retention', '1h'], env, nodeArgs);
  await mt.waitFor(/listening on/);
  const mtUrl = `http://127.0.0.1:${mtPort}`;
  const ps = startTidemark(['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', mtUrl], env, nodeArgs);
  await ps.waitFor(/listening on/);
  return { psUrl: `http://127.0.0.1:${psPort}`, mtUrl, mt, ps };
}

async function metricsOf(url: string): Promise<Map<string, number>> {
  const r = await fetch(`${url}/metrics`, { headers: auth });
  return parseMetrics(await r.text());
}

/** Posts every machine's frames (machines in parallel, each in order) and waits until all are applied. */
async function replicate(s: Stack, machines: Array<{ name: string; frames: Buffer[]; records: number }>): Promise<number> {
  const started = performance.now();
  await Promise.all(machines.map(async (m) => {
    for (const f of m.frames) {
      for (;;) {
        const status = await post(s.psUrl, `/v1/streams/${m.name}/disk0/batches`, f);
        if (status === 200) break;
        if (status !== 507 && status !== 503) throw new Error(`batch of ${m.name} answered ${status}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }));
  const want = machines.reduce((n, m) => n + m.records, 0);
  await waitUntil('everything applied', async () => {
    const m = await metricsOf(s.mtUrl);
    return (m.get('tidemark_master_target_applied_records_total') ?? 0) >= want ? true : undefined;
  }, 600_000);
  return (performance.now() - started) / 1000;
}

function compressedBytes(cmd: string, file: string): number {
  const r = spawnSync(cmd, ['-1', '-c', file], { maxBuffer: 2 * 1024 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout.length;
}

function row(cells: Array<string | number>): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(40) : String(c).padStart(14))).join('');
}

async function main(): Promise<void> {
  await loadHashing();
  const dir = await mkdtemp(join(tmpdir(), 'tm-bench-wan-'));
  process.stdout.write(`machine: ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at start\n`);
  process.stdout.write(`mix: ${Object.entries(DEFAULT_MIX).map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(', ')} of 64 KiB blocks (seeded); shared blocks come from one pool of 256\n\n`);
  const pool = sharedPool(1, 256);
  try {
    // 1. WAN bytes per changed byte (WAN_MACHINES=0 skips it).
    if (RATIO_MACHINES > 0) {
      const s = await startStack(join(dir, 'ratio'));
      const ratioMachines = Array.from({ length: RATIO_MACHINES }, (_, i) => {
        const blocks = mixedBlocks(100 + i, RATIO_BLOCKS, pool);
        return { name: `ratio-${i}`, blocks, frames: framesOf(`ratio-${i}`, blocks), records: blocks.length };
      });
      const changedFile = join(dir, 'changed.bin');
      await writeFile(changedFile, Buffer.concat(ratioMachines.flatMap((m) => m.blocks)));
      const changed = ratioMachines.reduce((n, m) => n + m.blocks.length * MIX_BLOCK_BYTES, 0);
      await replicate(s, ratioMachines);
      const pm = await metricsOf(s.psUrl);
      const wire = pm.get('tidemark_process_server_sent_bytes_total')!;
      const lz4 = compressedBytes('lz4', changedFile);
      const zstd = compressedBytes('zstd', changedFile);
      process.stdout.write(`WAN bytes for ${(changed / MiB).toFixed(0)} MiB changed on ${RATIO_MACHINES} machines\n`);
      process.stdout.write(row(['', 'bytes', 'per changed B', 'vs lz4 -1']) + '\n');
      for (const [what, bytes] of [['tidemark process server → master target', wire], ['lz4 -1 (whole stream)', lz4], ['zstd -1 (whole stream)', zstd]] as const) {
        process.stdout.write(row([what, bytes, (bytes / changed).toFixed(3), (bytes / lz4).toFixed(2)]) + '\n');
      }
      process.stdout.write(`  of the changed bytes: ${(100 * pm.get('tidemark_process_server_zero_bytes_total')! / changed).toFixed(1)}% sent as zero ranges, ` +
        `${(100 * pm.get('tidemark_process_server_referenced_bytes_total')! / changed).toFixed(1)}% as references\n\n`);
      await s.ps.stop();
      await s.mt.stop();
    }

    // 2. Throughput with many agents.
    const s = await startStack(join(dir, 'throughput'), CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : []);
    if (CPU_PROF_DIR) process.stdout.write(`CPU profiles in ${CPU_PROF_DIR}: process server pid ${s.ps.child.pid}, master target pid ${s.mt.child.pid}\n`);
    const blocksPerAgent = Math.floor((AGENT_MIB * MiB) / MIX_BLOCK_BYTES);
    const agents = Array.from({ length: AGENTS }, (_, i) => {
      const blocks = mixedBlocks(1000 + i, blocksPerAgent, pool);
      return { name: `agent-${i}`, frames: framesOf(`agent-${i}`, blocks), records: blocks.length };
    });
    const total = AGENTS * blocksPerAgent * MIX_BLOCK_BYTES;
    const cpuBefore = await Promise.all([s.ps, s.mt].map((p) => cpuTimes(p.child.pid)));
    const senderBefore = process.cpuUsage();
    const windowFromUs = process.hrtime.bigint() / 1000n;
    const seconds = await replicate(s, agents);
    if (CPU_PROF_DIR) process.stdout.write(`profile window (monotonic µs): ${windowFromUs}..${process.hrtime.bigint() / 1000n}\n`);
    const cpu = (await Promise.all([s.ps, s.mt].map((p) => cpuTimes(p.child.pid)))).map((c, i) => ({
      userSeconds: c.userSeconds - cpuBefore[i].userSeconds, systemSeconds: c.systemSeconds - cpuBefore[i].systemSeconds,
    }));
    const sender = process.cpuUsage(senderBefore);
    const tm = await metricsOf(s.psUrl);
    const mtm = await metricsOf(s.mtUrl);
    process.stdout.write(`${AGENTS} agents, ${AGENT_MIB} MiB changed each (${(total / MiB).toFixed(0)} MiB), 1 MiB frames, one process server into one master target\n`);
    process.stdout.write(row(['', 'seconds', 'MB/s changed', 'goal MB/s']) + '\n');
    process.stdout.write(row(['agents → process server → master target', seconds.toFixed(2), (total / 1e6 / seconds).toFixed(0), 300]) + '\n');
    process.stdout.write(`  WAN bytes ${(tm.get('tidemark_process_server_sent_bytes_total')! / MiB).toFixed(0)} MiB; master target apply time ${mtm.get('tidemark_master_target_apply_seconds_total')!.toFixed(1)} s over ${mtm.get('tidemark_master_target_applied_batches_total')} batches\n`);
    const perGiB = (sec: number) => (sec / (total / 1024 / MiB)).toFixed(2);
    const split = (c: { userSeconds: number; systemSeconds: number }) => `${perGiB(c.userSeconds + c.systemSeconds)} (user ${perGiB(c.userSeconds)}, system ${perGiB(c.systemSeconds)})`;
    process.stdout.write(`  CPU seconds per GiB changed: process server ${split(cpu[0])}, master target ${split(cpu[1])}, the ${AGENTS} senders (this process) ${split({ userSeconds: sender.user / 1e6, systemSeconds: sender.system / 1e6 })}\n`);
    process.stdout.write(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    await s.ps.stop();
    await s.mt.stop();
  } finally {
    keepAlive.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
