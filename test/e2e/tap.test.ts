/**
 * Tap mode end to end with real NBD clients (qemu-io, nbdcopy, nbdinfo) against the agent's
 * NBD server, the real process server and master target on loopback, and exports compared
 * byte for byte with a model of every write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { seededRandom, randomBuffer } from '../../cli/demo/sample-disk.ts';
import { type PointInfo } from '../helpers/stack.ts';
import { startTap as startTapWith, stopTap, exportSha, withLogs, type Tap } from '../helpers/tap.ts';
import { startTidemark, runTidemark, waitUntil } from '../helpers/tidemark-process.ts';
import { qemuIo, qemuIoWith, nbdcopy, nbdinfo } from '../helpers/nbd-clients.ts';

const MiB = 1024 * 1024;
const DISK_BYTES = 64 * MiB;
const BLOCK = 64 * 1024;

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function startTap(name: string, extra: string[] = [], initial?: Buffer): Promise<Tap> {
  return startTapWith(name, { extra, initial, diskBytes: DISK_BYTES });
}

async function pointsUntil(t: Tap, machine: string, seq: number): Promise<PointInfo[]> {
  return waitUntil(`point ${seq}`, async () => {
    const p = await t.stack.points(machine);
    return p.length && p[p.length - 1].seq >= seq ? p : undefined;
  }, 60_000);
}

/** The agent killed -9 while the process server is away; both started again. */
async function killAgentAndRestartBoth(t: Tap): Promise<void> {
  await t.agent.kill9();
  await t.stack.startProcessServer();
  t.agent = startTidemark(t.agentArgs, t.env);
  await t.agent.waitFor(/serving 1 disk/);
}

test('every write boundary is a recovery point equal to the model of the disk', { timeout: 180_000 }, async () => {
  const rand = seededRandom(3);
  const initial = Buffer.alloc(DISK_BYTES);
  randomBuffer(rand, 4 * MiB).copy(initial, 8 * MiB);
  const t = await startTap('tapwrites', [], initial);
  try {
    await withLogs(t, async () => {
      const [first] = await pointsUntil(t, 'tapwrites', 1);
      assert.equal(first.name, 'initial sync complete');
      const model = Buffer.from(initial);
      const expected = new Map<number, string>([[first.seq, sha(model)]]);
      const listing = await nbdinfo('--list', t.uri.replace(/\/disk0$/, ''));
      assert.match(listing, /export="disk0"/);
      assert.match(await nbdinfo(t.uri), new RegExp(`export-size: ${DISK_BYTES}`));
      let seq = first.seq;
      for (let i = 0; i < 16; i++) {
        const kind = Math.floor(rand() * 4);
        const offset = Math.floor(rand() * (DISK_BYTES / 512 - 256)) * 512 + (kind === 3 ? 0 : Math.floor(rand() * 4) * 512);
        const length = (1 + Math.floor(rand() * 128)) * 512;
        const pattern = 1 + Math.floor(rand() * 250);
        if (kind === 0 || kind === 3) {
          await qemuIo(t.uri, `write -P ${pattern} ${offset} ${length}`);
          model.fill(pattern, offset, offset + length);
        } else if (kind === 1) {
          await qemuIo(t.uri, `write -z ${offset} ${length}`);
          model.fill(0, offset, offset + length);
        } else {
          await qemuIo(t.uri, `discard ${offset} ${length}`);
          model.fill(0, offset, offset + length);
        }
        expected.set(++seq, sha(model));
      }
      assert.equal(sha(await readFile(t.disk)), sha(model), 'the source disk holds what the client wrote');
      const points = await pointsUntil(t, 'tapwrites', seq);
      const ids = points.map((p) => p.seq).filter((s) => s >= first.seq);
      assert.deepEqual(ids, [...expected.keys()], 'one point per write, in order');
      for (const [s, h] of expected) assert.equal(await exportSha(t, 'tapwrites', String(s)), h, `point ${s}`);

      // A bookmark is a named point at the current write boundary.
      const b = await runTidemark(['bookmark', '--process-server', t.stack.psUrl, '--machine', 'tapwrites', 'before upgrade'], t.env);
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, new RegExp(`disk0\\s+${seq + 1}\\s+bookmark "before upgrade"`));
      const marked = (await pointsUntil(t, 'tapwrites', seq + 1)).find((p) => p.seq === seq + 1)!;
      assert.deepEqual([marked.kind, marked.name, marked.consistent], ['bookmark', 'before upgrade', true]);
      assert.equal(await exportSha(t, 'tapwrites', String(seq + 1)), sha(model));
    });
  } finally {
    await stopTap(t);
  }
});

test('nbdcopy copies a whole image in over several connections and the replica matches', { timeout: 180_000 }, async () => {
  const t = await startTap('tapcopy');
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapcopy', 1);
      const src = join(t.dir, 'src.img');
      const image = Buffer.alloc(DISK_BYTES);
      const rand = seededRandom(9);
      for (let at = 0; at < DISK_BYTES; at += MiB) if (rand() < 0.6) randomBuffer(rand, MiB).copy(image, at);
      await writeFile(src, image);
      await nbdcopy(src, t.uri);
      assert.equal(sha(await readFile(t.disk)), sha(image));
      await waitUntil('the copy to reach the master target', async () => {
        const [s] = await t.stack.status();
        return s && s.backlogBytes === 0 && s.appliedSeq === s.receivedSeq && (await exportSha(t, 'tapcopy', 'latest')) === sha(image) ? true : undefined;
      }, 90_000);
    });
  } finally {
    await stopTap(t);
  }
});

test('the agent killed -9 right after a flush loses no flushed write, and resumes without a full resync', { timeout: 180_000 }, async () => {
  const t = await startTap('tapkill');
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapkill', 1);
      // Keep the process server away so the writes can only be in the agent's log.
      await t.stack.ps.kill9();
      const model = Buffer.alloc(DISK_BYTES);
      for (let i = 0; i < 8; i++) {
        await qemuIo(t.uri, `write -P ${0x10 + i} ${i * 3 * MiB} ${MiB}`, 'flush');
        model.fill(0x10 + i, i * 3 * MiB, i * 3 * MiB + MiB);
      }
      await killAgentAndRestartBoth(t);
      const points = await pointsUntil(t, 'tapkill', 9);
      assert.equal(points[points.length - 1].seq, 9, 'the eight writes follow the initial sync point');
      assert.equal(await exportSha(t, 'tapkill', 'latest'), sha(model));
      assert.doesNotMatch(t.agent.stdout() + t.agent.stderr(), /comparing the whole disk|resync/i);
      // Killed again once everything was acknowledged (an empty log): it still knows where it stands.
      await t.agent.kill9();
      t.agent = startTidemark(t.agentArgs, t.env);
      await t.agent.waitFor(/serving 1 disk/);
      await qemuIo(t.uri, `write -P 0x77 ${40 * MiB} 4096`, 'flush');
      model.fill(0x77, 40 * MiB, 40 * MiB + 4096);
      await pointsUntil(t, 'tapkill', 10);
      assert.equal(await exportSha(t, 'tapkill', '10'), sha(model));
      assert.doesNotMatch(t.agent.stdout() + t.agent.stderr(), /comparing the whole disk|resync/i);
    });
  } finally {
    await stopTap(t);
  }
});

test('the agent killed -9 after unflushed, overlapping large and small writes keeps every acknowledged one, in the order the disk saw them', { timeout: 180_000 }, async () => {
  const t = await startTap('tapunflushed');
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapunflushed', 1);
      // Only the agent's log can hold the writes: the process server is away.
      await t.stack.ps.kill9();
      const rand = seededRandom(31);
      const sizes = [4096, 65536, 196608, MiB, 2 * MiB, 512, 12288];
      const commands: string[] = [];
      const written: { offset: number; length: number; pattern: number }[] = [];
      for (let i = 0; i < 40; i++) {
        const length = sizes[Math.floor(rand() * sizes.length)];
        // Inside the first 6 MiB, so that large and small writes overlap one another.
        const offset = Math.floor((rand() * (6 * MiB - length)) / 512) * 512;
        const pattern = 1 + (i % 250);
        commands.push(`aio_write -P ${pattern} ${offset} ${length}`);
        written.push({ offset, length, pattern });
      }
      // Sent back to back on one connection, many in flight; `aio_flush` waits for every reply
      // and no NBD flush is sent (cache mode unsafe): acknowledged is all these writes are.
      // The order of overlapping writes in flight together is the server's to choose, so the
      // truth is the disk as it ended, which the replica must equal.
      await qemuIoWith(['-t', 'unsafe'], t.uri, ...commands, 'aio_flush');
      const disk = await readFile(t.disk);
      const last = written[written.length - 1];
      assert.ok(disk.subarray(last.offset, last.offset + last.length).some((b) => b === last.pattern), 'the writes reached the disk');
      await killAgentAndRestartBoth(t);
      const points = await pointsUntil(t, 'tapunflushed', 41);
      assert.equal(points[points.length - 1].seq, 41, 'one record per write after the initial sync point');
      assert.equal(await exportSha(t, 'tapunflushed', 'latest'), sha(disk));
      assert.doesNotMatch(t.agent.stdout() + t.agent.stderr(), /comparing the whole disk|resync/i);
    });
  } finally {
    await stopTap(t);
  }
});

/** The agent's counters of its last finished resync (from its log). */
function resyncStats(t: Tap): { comparedBlocks: number; equalBlocks: number; sentBlocks: number; sentBytes: number } {
  const lines = t.agent.stderr().split('\n').filter((l) => l.includes('"resync finished"'));
  assert.ok(lines.length > 0, 'the agent logged its resync');
  const { comparedBlocks, equalBlocks, sentBlocks, sentBytes } = JSON.parse(lines[lines.length - 1]);
  return { comparedBlocks, equalBlocks, sentBlocks, sentBytes };
}

/**
 * The resync's records as the master target holds them: those between the last write-boundary
 * point before "resync complete" and that tag. Each is one 64 KiB block.
 */
async function resyncRecordsAtMasterTarget(t: Tap, machine: string): Promise<{ done: PointInfo; records: number }> {
  const points = await waitUntil('the resync to complete', async () => {
    const p = await t.stack.points(machine);
    return p.some((x) => x.name === 'resync complete') ? p : undefined;
  }, 90_000);
  const done = points.find((x) => x.name === 'resync complete')!;
  const before = points.filter((x) => x.seq < done.seq).pop()!;
  return { done, records: done.seq - before.seq - 1 };
}

/** Writes, one by one, and checks the replica at each of their points. */
async function writesAfterResync(t: Tap, machine: string, model: Buffer, fromSeq: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const offset = (41 + i * 3) * MiB + i * 4096;
    await qemuIo(t.uri, `write -P ${0x60 + i} ${offset} 8192`);
    model.fill(0x60 + i, offset, offset + 8192);
    await pointsUntil(t, machine, fromSeq + 1 + i);
    assert.equal(await exportSha(t, machine, String(fromSeq + 1 + i)), sha(model), `point ${fromSeq + 1 + i} after the resync`);
  }
}

test('a full change log falls back to the dirty bitmap, and the hash-compare resync sends only the blocks that differ', { timeout: 180_000 }, async () => {
  const rand = seededRandom(17);
  const before = Buffer.alloc(DISK_BYTES);
  for (let at = 0; at < 24 * MiB; at += MiB) randomBuffer(rand, MiB).copy(before, at);
  const t = await startTap('tapfull', ['--max-log-bytes', '2M'], before);
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapfull', 1);
      await t.stack.ps.kill9();
      // The whole image is written again, in order, in 64 KiB requests (logged with their data;
      // larger ones would be held by the disk and take little room), with six 64 KiB blocks
      // changed (one of them only in its middle 4 KiB) past the first 8 MiB: by then the 2 MiB
      // log is full, so they are tracked by the bitmap with every other block the copy wrote.
      const image = Buffer.from(before);
      const changed = [130, 177, 200, 250, 301, 380];
      for (const b of changed) randomBuffer(rand, b === 200 ? 4096 : BLOCK).copy(image, b * BLOCK + (b === 200 ? 16384 : 0));
      const src = join(t.dir, 'src.img');
      await writeFile(src, image);
      await nbdcopy(src, t.uri, '--connections=1', '--request-size=65536');
      assert.equal(sha(await readFile(t.disk)), sha(image));
      await waitUntil('the agent to fall back to the bitmap', async () => (/change log full/.test(t.agent.stderr()) ? true : undefined), 30_000);
      await t.stack.startProcessServer();
      const { done, records } = await resyncRecordsAtMasterTarget(t, 'tapfull');
      assert.equal(done.consistent, true);
      assert.equal(await exportSha(t, 'tapfull', String(done.seq)), sha(image));
      // Only the changed blocks went out: measured at the master target, and by the agent.
      assert.equal(records, changed.length, 'one resync record per changed block');
      const stats = resyncStats(t);
      assert.equal(stats.sentBlocks, changed.length);
      assert.equal(stats.sentBytes, changed.length * BLOCK);
      assert.ok(stats.equalBlocks >= 300, `most dirty blocks compared equal (${stats.equalBlocks})`);
      // Writes after the resync are recorded one by one again, each a point.
      await writesAfterResync(t, 'tapfull', image, done.seq);
    });
  } finally {
    await stopTap(t);
  }
});

test('after a host crash (a new boot id) the resync compares the whole disk and sends only what differs', { timeout: 180_000 }, async () => {
  const rand = seededRandom(23);
  const initial = Buffer.alloc(DISK_BYTES);
  for (let at = 0; at < 16 * MiB; at += MiB) randomBuffer(rand, MiB).copy(initial, at);
  const t = await startTap('tapcrash', [], initial);
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapcrash', 1);
      await qemuIo(t.uri, `write -P 0x33 ${20 * MiB} 65536`, 'flush');
      await pointsUntil(t, 'tapcrash', 2);
      await t.agent.kill9();
      // Writes that reached the disk but never the log (the consumer did not flush them before
      // the power went), and a host that comes back with another boot id.
      const disk = await readFile(t.disk);
      const changed = [3, 100, 700];
      for (const b of changed) randomBuffer(rand, 4096).copy(disk, b * BLOCK + 8192);
      await writeFile(t.disk, disk);
      const statePath = join(t.dir, 'agent', 'disk0', 'tap-state.json');
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      assert.equal(state.cleanShutdown, false);
      await writeFile(statePath, JSON.stringify({ ...state, bootId: 'the-boot-before-the-crash' }));
      t.agent = startTidemark(t.agentArgs, t.env);
      await t.agent.waitFor(/serving 1 disk/);
      const { done, records } = await resyncRecordsAtMasterTarget(t, 'tapcrash');
      assert.match(t.agent.stderr(), /host restarted/);
      assert.equal(await exportSha(t, 'tapcrash', String(done.seq)), sha(disk));
      assert.equal(records, changed.length, 'one resync record per changed block, not the whole disk');
      const stats = resyncStats(t);
      assert.deepEqual(stats, { comparedBlocks: DISK_BYTES / BLOCK, equalBlocks: DISK_BYTES / BLOCK - changed.length, sentBlocks: changed.length, sentBytes: changed.length * BLOCK });
      await writesAfterResync(t, 'tapcrash', disk, done.seq);
    });
  } finally {
    await stopTap(t);
  }
});

test('with --app-consistent-interval the agent freezes, tags an app-consistent point and thaws', { timeout: 120_000 }, async () => {
  const hooksLog = join(tmpdir(), `tm-tap-hooks-${process.pid}.log`);
  const t = await startTap('tapapp', ['--freeze-cmd', `echo frozen >> '${hooksLog}'`, '--thaw-cmd', `echo thawed >> '${hooksLog}'`, '--app-consistent-interval', '2']);
  try {
    await withLogs(t, async () => {
      await pointsUntil(t, 'tapapp', 1);
      await qemuIo(t.uri, `write -P 9 ${5 * MiB} 65536`, 'flush');
      const model = Buffer.alloc(DISK_BYTES);
      model.fill(9, 5 * MiB, 5 * MiB + 65536);
      const app = await waitUntil('an app-consistent point after the write', async () => {
        return (await t.stack.points('tapapp')).find((p) => p.kind === 'app' && p.seq > 2);
      }, 30_000);
      assert.equal(app.consistent, true);
      assert.equal(await exportSha(t, 'tapapp', app.id), sha(model));
      const hooks = await waitUntil('the thaw', async () => {
        const lines = (await readFile(hooksLog, 'utf8')).trim().split('\n');
        return lines.length >= 2 ? lines : undefined;
      }, 10_000);
      assert.deepEqual(hooks.slice(0, 2), ['frozen', 'thawed']);
    });
  } finally {
    await stopTap(t);
    await rm(hooksLog, { force: true });
  }
});
