/**
 * A hash-compare resync stopped half way resumes from its saved cursor: a tap disk (with its
 * change log and uploader) and a real process server and master target in this process; the
 * agent "dies" after a few ranges (its objects dropped, only its files kept) and a new one
 * carries on from where the first stopped, comparing each block once and sending only the
 * blocks that differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { blockHash, loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { startProcessServer } from '../../process-server/server.ts';
import { Uploader } from '../../edge-agent/uploader.ts';
import { TapDisk } from '../../edge-agent/tap/tap-disk.ts';
import { LogUploader } from '../../edge-agent/tap/log-uploader.ts';
import { HashResync } from '../../edge-agent/tap/hash-resync.ts';
import { loadTapState, newTapState, saveTapState, type TapState } from '../../edge-agent/tap/tap-state.ts';

const BLOCK = 64 * 1024;
const BLOCKS = 256;
const MACHINE = 'resume';

interface Agent {
  disk: TapDisk;
  lu: LogUploader;
  resync: HashResync;
  abort: AbortController;
  running: Promise<void>;
}

async function startAgent(path: string, stateDir: string, psUrl: string, state: TapState): Promise<Agent> {
  const dir = join(stateDir, 'disk0');
  const disk = await TapDisk.open({ machine: MACHINE, disk: 'disk0', path, stateDir, maxLogBytes: 64 << 20, state, log: silentLogger });
  const abort = new AbortController();
  const uploader = new Uploader({ processServerUrl: psUrl, machine: MACHINE, disk: 'disk0', log: silentLogger, signal: abort.signal });
  const lu = new LogUploader({ disk, uploader, log: silentLogger, signal: abort.signal, onAck: async (n) => void (disk.state.ackedNextSeq = n) });
  disk.onAppend = () => lu.wake();
  const save = () => saveTapState(dir, disk.state);
  const resync = new HashResync({
    disk, processServerUrl: psUrl, machine: MACHINE, serverNextSeq: () => lu.serverNextSeq, save, log: silentLogger, signal: abort.signal, windowBlocks: 32, roundBlocks: 8,
  });
  return { disk, lu, resync, abort, running: lu.run().catch(() => undefined) };
}

async function stepUntil(a: Agent, done: () => boolean): Promise<void> {
  const until = Date.now() + 60_000;
  while (!done()) {
    if (Date.now() > until) throw new Error('the resync made no progress within 60 s');
    if (!(await a.resync.step())) await new Promise((r) => setTimeout(r, 20));
  }
}

test('a resync stopped half way resumes at its cursor and sends only the blocks that differ', { timeout: 120_000 }, async () => {
  await loadHashing();
  const dir = await mkdtemp(join(tmpdir(), 'tm-resync-resume-'));
  const mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, retentionSeconds: 3600, log: silentLogger });
  const ps = await startProcessServer({ dataDir: join(dir, 'ps'), host: '127.0.0.1', port: 0, masterTargetUrl: mt.url, log: silentLogger });
  let agent: Agent | undefined;
  try {
    const path = join(dir, 'disk.img');
    const image = Buffer.alloc(BLOCKS * BLOCK);
    randomBytes(8 << 20).copy(image, 2 << 20);
    await writeFile(path, image);
    const stateDir = join(dir, 'agent');
    await mkdir(join(stateDir, 'disk0'), { recursive: true });
    agent = await startAgent(path, stateDir, ps.url, newTapState(path, image.length, 'boot-a'));
    while (!agent.disk.state.initialSync.done) agent.disk.initialSyncStep();

    // Blocks changed behind the agent's back, then every block to compare (as after a host crash).
    const changed = [5, 40, 41, 100, 170, 255];
    const disk = await readFile(path);
    for (const b of changed) randomBytes(4096).copy(disk, b * BLOCK + 4096);
    await writeFile(path, disk);
    agent.disk.markAllDirty();
    await saveTapState(join(stateDir, 'disk0'), agent.disk.state);

    // Three ranges of 32 blocks, then the agent is gone: only its files remain.
    await stepUntil(agent, () => (agent!.disk.state.resyncCursorBlock ?? 0) >= 96);
    const first = { ...agent.disk.resyncStats };
    const cursor = agent.disk.state.resyncCursorBlock!;
    assert.ok(agent.disk.state.bitmapMode, 'still resyncing');
    agent.abort.abort();
    await agent.running;
    agent.disk.close();

    const state = loadTapState(join(stateDir, 'disk0'))!;
    assert.equal(state.resyncCursorBlock, cursor, 'the cursor was saved');
    agent = await startAgent(path, stateDir, ps.url, state);
    assert.equal(agent.disk.bitmap.dirtyCount, BLOCKS - cursor, 'the compared blocks are not dirty any more');
    await stepUntil(agent, () => !agent!.disk.state.bitmapMode);
    const second = agent.disk.resyncStats;
    assert.equal(first.comparedBlocks + second.comparedBlocks, BLOCKS, 'every block compared once');
    assert.equal(first.sentBlocks + second.sentBlocks, changed.length, 'only the changed blocks sent');
    assert.equal(second.comparedBlocks, BLOCKS - cursor, 'the second run began at the cursor');

    // The replica equals the disk, block for block, once the last records are applied.
    await new Promise<void>((resolve, reject) => {
      const until = Date.now() + 30_000;
      const poll = () => (agent!.lu.serverNextSeq === agent!.disk.nextSeq ? resolve() : Date.now() > until ? reject(new Error('log not drained')) : setTimeout(poll, 20));
      poll();
    });
    const r = await fetch(`${ps.url}/v1/streams/${MACHINE}/disk0/block-hashes?first=0&count=${BLOCKS}&waitMs=30000`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { seq: number; hashes: string };
    assert.equal(body.seq, agent.disk.nextSeq - 1);
    const theirs = Buffer.from(body.hashes, 'base64');
    for (let b = 0; b < BLOCKS; b++) assert.deepEqual(theirs.subarray(b * 16, b * 16 + 16), blockHash(disk.subarray(b * BLOCK, (b + 1) * BLOCK)), `block ${b}`);
  } finally {
    agent?.abort.abort();
    await agent?.running;
    agent?.disk.close();
    await ps.close();
    await mt.close();
    await rm(dir, { recursive: true, force: true });
  }
});
