/**
 * Held writes end to end (docs/agent-state.md, "Held writes"): large writes logged by range
 * and read back from the disk when shipped, overwritten by later writes, zeroes and trims
 * before they were shipped, across a kill -9 and a host crash; every point the master target
 * keeps is compared byte for byte with a model of the disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { type PointInfo } from '../helpers/stack.ts';
import { startTap as startTapWith, stopTap, exportSha, withLogs, type Tap } from '../helpers/tap.ts';
import { startTidemark, waitUntil } from '../helpers/tidemark-process.ts';
import { qemuIo, qemuIoWith } from '../helpers/nbd-clients.ts';
import { NbdWriter } from '../../bench/tap/nbd-writer.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
const DISK_BYTES = 16 * MiB;

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** One consumer request and what it does to the model. */
type Op = { cmd: string; apply: (m: Buffer) => void } | { flush: true };
const write = (pattern: number, offset: number, length: number): Op => ({ cmd: `write -P ${pattern} ${offset} ${length}`, apply: (m) => m.fill(pattern, offset, offset + length) });
const zero = (offset: number, length: number): Op => ({ cmd: `write -z ${offset} ${length}`, apply: (m) => m.fill(0, offset, offset + length) });
const trim = (offset: number, length: number): Op => ({ cmd: `discard ${offset} ${length}`, apply: (m) => m.fill(0, offset, offset + length) });
const FLUSH: Op = { flush: true };

/**
 * Large writes (held), each overwritten before anything is shipped by a small write, a large
 * one, a zeroing, a trim or a whole rewrite; some of them before a flush, some after.
 */
const OPS: Op[] = [
  write(0x11, 0, MiB),
  write(0x12, 512 * KiB, 4 * KiB),
  write(0x13, 2 * MiB, 512 * KiB),
  FLUSH,
  write(0x14, 2 * MiB + 128 * KiB, 256 * KiB),
  zero(2 * MiB + 192 * KiB, 8 * KiB),
  write(0x15, 4 * MiB, MiB),
  trim(4 * MiB + 256 * KiB, 64 * KiB),
  write(0x16, 0, 2 * MiB),
  write(0x17, 6 * MiB, 128 * KiB),
  write(0x18, 6 * MiB, 128 * KiB),
  write(0x19, 8 * MiB, 3 * MiB),
  FLUSH,
  write(0x1a, 9 * MiB, 64 * KiB),
  write(0x1b, 12 * MiB, 2 * MiB),
  write(0x1c, 15 * MiB, 4 * KiB),
];

function startTap(name: string): Promise<Tap> {
  return startTapWith(name, { diskBytes: DISK_BYTES });
}

async function pointsUntil(t: Tap, machine: string, done: (p: PointInfo[]) => boolean): Promise<PointInfo[]> {
  return waitUntil('points', async () => {
    const p = await t.stack.points(machine);
    return p.length && done(p) ? p : undefined;
  }, 90_000);
}

/**
 * Runs the ops one request at a time (each acknowledged before the next is sent); returns the
 * model's hash after each record, keyed by its seq. qemu-io flushes as it exits, so the writes
 * after the last FLUSH go through a client that never flushes.
 */
async function runOps(t: Tap, firstSeq: number, model: Buffer): Promise<Map<number, string>> {
  const expected = new Map<number, string>();
  let seq = firstSeq;
  let batch: string[] = [];
  const send = async () => {
    if (batch.length) await qemuIoWith(['-t', 'unsafe'], t.uri, ...batch);
    batch = [];
  };
  const lastFlush = OPS.lastIndexOf(FLUSH);
  const writer = await NbdWriter.connect('127.0.0.1', Number(new URL(t.uri).port), 'disk0');
  for (const [i, op] of OPS.entries()) {
    if (i > lastFlush && !('flush' in op)) {
      const m = /^write -P (\d+) (\d+) (\d+)$/.exec(op.cmd);
      assert.ok(m, `only plain writes follow the last flush (${op.cmd})`);
      await writer.write(Number(m[2]), Buffer.alloc(Number(m[3]), Number(m[1])));
      op.apply(model);
      expected.set(++seq, sha(model));
      continue;
    }
    if ('flush' in op) {
      await send();
      await qemuIo(t.uri, 'flush');
      continue;
    }
    batch.push(op.cmd);
    op.apply(model);
    expected.set(++seq, sha(model));
  }
  await send();
  await writer.close();
  return expected;
}

test('held writes overwritten before they were shipped, and an agent killed -9 meanwhile: every point equals the model', { timeout: 180_000 }, async () => {
  const t = await startTap('heldkill');
  try {
    await withLogs(t, async () => {
      const [first] = await pointsUntil(t, 'heldkill', (p) => p.length >= 1);
      // Only the agent holds the writes: the process server is away until the agent is killed.
      await t.stack.ps.kill9();
      const model = Buffer.alloc(DISK_BYTES);
      const expected = await runOps(t, first.seq, model);
      assert.equal(sha(await readFile(t.disk)), sha(model), 'the source disk holds what the client wrote');
      const held = (await readFile(join(t.dir, 'agent', 'disk0', 'held', '0000000000000000.held'))).length;
      assert.ok(held > 4 * MiB, `overwritten held writes were copied aside (${held} bytes)`);
      await t.agent.kill9();
      await t.stack.startProcessServer();
      t.agent = startTidemark(t.agentArgs, t.env);
      await t.agent.waitFor(/serving 1 disk/);
      const last = Math.max(...expected.keys());
      const points = await pointsUntil(t, 'heldkill', (p) => p[p.length - 1].seq >= last);
      assert.deepEqual(points.map((p) => p.seq).filter((s) => s > first.seq), [...expected.keys()], 'one point per request, in order');
      for (const [s, h] of expected) assert.equal(await exportSha(t, 'heldkill', String(s)), h, `point ${s}`);
      assert.doesNotMatch(t.agent.stderr(), /comparing the whole disk/);
      // Once everything is acknowledged the copies go.
      await waitUntil('the copies to be dropped', async () => {
        const st = await readFile(join(t.dir, 'agent', 'disk0', 'held', '0000000000000000.held')).catch(() => Buffer.alloc(0));
        return st.length === 0 ? true : undefined;
      }, 30_000);
    });
  } finally {
    await stopTap(t);
  }
});

test('after a host crash the log is cut before the first held write no flush covered; points before it stay exact and the resync restores the disk', { timeout: 180_000 }, async () => {
  const t = await startTap('heldcrash');
  try {
    await withLogs(t, async () => {
      const [first] = await pointsUntil(t, 'heldcrash', (p) => p.length >= 1);
      await t.stack.ps.kill9();
      const model = Buffer.alloc(DISK_BYTES);
      const expected = await runOps(t, first.seq, model);
      await t.agent.kill9();
      const statePath = join(t.dir, 'agent', 'disk0', 'tap-state.json');
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      await writeFile(statePath, JSON.stringify({ ...state, bootId: 'the-boot-before-the-crash' }));
      await t.stack.startProcessServer();
      t.agent = startTidemark(t.agentArgs, t.env);
      await t.agent.waitFor(/serving 1 disk/);
      const points = await pointsUntil(t, 'heldcrash', (p) => p.some((x) => x.name === 'resync complete'));
      assert.match(t.agent.stderr(), /cutting the change log before a large write that was never flushed/);
      // The last flush came after the 11th request; the first held write after it is the 13th.
      const cut = first.seq + 13;
      const kept = points.map((p) => p.seq).filter((s) => s > first.seq && s < cut);
      assert.deepEqual(kept, [...expected.keys()].filter((s) => s < cut), 'every request before the cut is a point');
      for (const s of kept) assert.equal(await exportSha(t, 'heldcrash', String(s)), expected.get(s), `point ${s}`);
      const done = points.find((x) => x.name === 'resync complete')!;
      assert.equal(await exportSha(t, 'heldcrash', String(done.seq)), sha(model), 'the resync restored the disk');
    });
  } finally {
    await stopTap(t);
  }
});
