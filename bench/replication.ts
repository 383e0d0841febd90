/**
 * Issue 2's benchmark: initial-sync throughput of a 1 GiB image through the three real
 * processes, and the end-to-end time of one scan cycle with 1% of the 64 KiB blocks changed,
 * beside `rsync --inplace --no-whole-file` of the same change on the same machine.
 */
import { mkdtemp, rm, open, readFile, copyFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { seededRandom, randomBuffer, textBuffer } from '../cli/demo/sample-disk.ts';
import { freePort } from '../test/helpers/ports.ts';
import { startTidemark, waitUntil } from '../test/helpers/tidemark-process.ts';
import { table } from '../cli/table.ts';
import { WriterGate } from '../cli/demo/writer-gate.ts';
import { cpuSeconds } from './cpu.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BLOCK = 64 * 1024;
const ROUNDS = 3;

/** 1 GiB with no zero blocks: a third text, a third random, a third repeated (nothing to skip). */
async function makeFullImage(path: string, sizeBytes: number): Promise<void> {
  const rand = seededRandom(5);
  const fh = await open(path, 'w');
  const repeated = textBuffer(rand, MiB);
  for (let at = 0; at < sizeBytes; at += MiB) {
    const k = (at / MiB) % 3;
    await fh.write(k === 0 ? textBuffer(rand, MiB) : k === 1 ? randomBuffer(rand, MiB) : repeated, 0, MiB, at);
  }
  await fh.sync();
  await fh.close();
}

async function changeBlocks(path: string, sizeBytes: number, fraction: number, seed: number): Promise<number> {
  const rand = seededRandom(seed);
  const blocks = Math.floor(sizeBytes / BLOCK);
  const n = Math.round(blocks * fraction);
  const chosen = new Set<number>();
  while (chosen.size < n) chosen.add(Math.floor(rand() * blocks));
  const fh = await open(path, 'r+');
  for (const b of chosen) await fh.write(randomBuffer(rand, BLOCK), 0, BLOCK, b * BLOCK);
  await fh.sync();
  await fh.close();
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function replicationBench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tm-bench-'));
  const sizeBytes = GiB;
  const src = join(dir, 'source.img');
  const mirror = join(dir, 'rsync-target.img');
  process.stderr.write(`bench: making a 1 GiB image in ${dir}\n`);
  await makeFullImage(src, sizeBytes);
  const [psPort, mtPort] = [await freePort(), await freePort()];
  const mtUrl = `http://127.0.0.1:${mtPort}`;
  const freezeStamp = join(dir, 'freeze.ns');
  // The gate keeps each change out of a running scan, so a cycle always starts after it.
  const gate = new WriterGate(dir);
  await gate.init();
  const mt = startTidemark(['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`], { TIDEMARK_LOG_LEVEL: 'warn' });
  const ps = startTidemark(['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', mtUrl], { TIDEMARK_LOG_LEVEL: 'warn' });
  await mt.waitFor(/listening on/);
  await ps.waitFor(/listening on/);
  const pointsCount = async () => {
    const r = await fetch(`${mtUrl}/v1/machines/bench/disks/disk0/points`);
    return r.ok ? ((await r.json()) as { points: unknown[] }).points.length : 0;
  };
  const rows: string[][] = [];
  try {
    const started = Date.now();
    const agent = startTidemark([
      'agent', '--state', join(dir, 'agent'), '--process-server', `http://127.0.0.1:${psPort}`, '--machine', 'bench', '--disk', src,
      '--mode', 'scan', '--interval', '4', '--freeze-cmd', `${gate.freezeCmd}; date +%s%N > '${freezeStamp}'`, '--thaw-cmd', gate.thawCmd,
    ], { TIDEMARK_LOG_LEVEL: 'warn' });
    // The first point lands after the initial sync and the scan that follows it.
    await agent.waitFor(/initial sync done in ([\d.]+) s/, 600_000);
    await waitUntil('the first point', async () => ((await pointsCount()) >= 1 ? true : undefined), 120_000);
    const syncSeconds = (Date.now() - started) / 1000;
    // CPU seconds per GiB for each process: a figure that noise from other work on the machine barely moves.
    const cpu = await Promise.all([agent, ps, mt].map((p) => cpuSeconds(p.child.pid)));

    const rsyncStart = Date.now();
    execFileSync('rsync', ['--inplace', '--whole-file', src, mirror]);
    const rsyncFullSeconds = (Date.now() - rsyncStart) / 1000;
    rows.push(['initial sync, 1 GiB, no zero blocks (to first point)', `${syncSeconds.toFixed(2)} s = ${(sizeBytes / MiB / syncSeconds).toFixed(0)} MiB/s`,
      `rsync --whole-file ${rsyncFullSeconds.toFixed(2)} s`, (syncSeconds / rsyncFullSeconds).toFixed(2)]);
    rows.push(['  CPU seconds used by agent / process server / master target', cpu.map((c) => c.toFixed(1)).join(' / '), '', '']);

    const ours: number[] = [];
    const theirs: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await copyFile(src, mirror);
      let changed = 0;
      let stampBefore = '';
      await gate.write(round, async () => {
        changed = await changeBlocks(src, sizeBytes, 0.01, 100 + round);
        stampBefore = await readFile(freezeStamp, 'utf8').catch(() => '');
      });
      // Wait for a scan that starts after the change, then for its point at the master target.
      const freezeNs = await waitUntil('a scan after the change', async () => {
        const s = await readFile(freezeStamp, 'utf8').catch(() => '');
        return s && s !== stampBefore ? BigInt(s.trim()) : undefined;
      }, 60_000);
      // Its point is the first one tagged after that freeze.
      await waitUntil('its point', async () => {
        const r = await fetch(`${mtUrl}/v1/machines/bench/disks/disk0/points`);
        const points = r.ok ? ((await r.json()) as { points: Array<{ time: string }> }).points : [];
        return points.some((p) => BigInt(Date.parse(p.time)) * 1_000_000n >= freezeNs) ? true : undefined;
      }, 60_000);
      const landedNs = BigInt(Date.now()) * 1_000_000n;
      const cycle = Number(landedNs - freezeNs) / 1e9;
      ours.push(cycle);
      const t0 = Date.now();
      execFileSync('rsync', ['--inplace', '--no-whole-file', '--ignore-times', src, mirror]);
      theirs.push((Date.now() - t0) / 1000);
      process.stderr.write(`bench: round ${round}: ${changed} blocks changed; tidemark ${cycle.toFixed(2)} s, rsync ${theirs[theirs.length - 1].toFixed(2)} s\n`);
    }
    const o = median(ours);
    const t = median(theirs);
    rows.push([`one delta cycle, 1% of 64 KiB blocks of 1 GiB (median of ${ROUNDS})`, `${o.toFixed(2)} s`, `rsync --inplace --no-whole-file ${t.toFixed(2)} s`, (o / t).toFixed(2)]);
    await agent.stop();
  } finally {
    await ps.stop();
    await mt.stop();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\nReplication (scan mode), ${cpus().length} cores, warm page cache, three processes on 127.0.0.1\n`);
  process.stdout.write(table(['measure', 'tidemark', 'peer', 'ratio (lower is better)'], rows));
}
