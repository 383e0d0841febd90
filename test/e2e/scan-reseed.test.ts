import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeSampleDisk, sha256File, writeRandomBlocks, seededRandom } from '../../cli/demo/sample-disk.ts';
import { TestStack } from '../helpers/stack.ts';
import { startTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';

const MiB = 1024 * 1024;

/** The 'scan complete' log lines of an agent, as parsed objects. */
function passes(agent: Running): Array<{ kind: string; sentBytes: number; changedBlocks: number }> {
  return agent.stderr().split('\n').filter((l) => l.includes('"scan complete"')).map((l) => JSON.parse(l));
}

test('an agent that lost its state compares block hashes with the replica and sends only what differs', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-reseed-'));
  const env = { TIDEMARK_TOKEN: randomBytes(8).toString('hex') };
  const stack = await new TestStack(dir, env).start();
  const disk = join(dir, 'disk.img');
  const diskBytes = 64 * MiB;
  await makeSampleDisk(disk, diskBytes, 11);
  const agentArgs = (state: string) => ['agent', '--state', join(dir, state), '--process-server', stack.psUrl, '--machine', 'rs', '--disk', disk, '--mode', 'scan', '--interval', '1h'];
  let agent = startTidemark(agentArgs('agent-a'), env);
  try {
    await waitUntil('the first point', async () => ((await stack.points('rs')).length ? true : undefined), 90_000);
    await agent.stop();
    const first = passes(agent).find((p) => p.kind === 'initial')!;
    assert.ok(first.changedBlocks > 100, `the first initial sync sent the disk's data (${first.changedBlocks} blocks)`);

    // The agent's state is gone (a reinstalled host); the disk changed meanwhile.
    const changedBlocks = 10;
    await writeRandomBlocks(disk, diskBytes, changedBlocks, seededRandom(12));
    const expected = await sha256File(disk);
    const before = (await stack.points('rs')).length;
    agent = startTidemark(agentArgs('agent-b'), env);
    await waitUntil('a point after the restart', async () => ((await stack.points('rs')).length > before ? true : undefined), 90_000);
    await agent.stop();
    assert.match(agent.stderr(), /block hashes taken from the replica/);
    const again = passes(agent).find((p) => p.kind === 'initial')!;
    // A write may straddle two blocks.
    assert.ok(again.changedBlocks >= 1 && again.changedBlocks <= 2 * changedBlocks, `only changed blocks are sent (${again.changedBlocks} of ${first.changedBlocks})`);
    assert.ok(again.sentBytes <= (2 * changedBlocks + 1) * 64 * 1024, `sent ${again.sentBytes} bytes for ${changedBlocks} changed blocks`);

    const latest = (await stack.points('rs')).at(-1)!;
    assert.equal(await stack.imageHash('rs', latest.id), expected, 'the replica at the new point equals the changed source');
  } finally {
    await agent.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('after the process server lost its spool, the resync sends only the blocks the replica lacks', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-reseed-ps-'));
  const env = { TIDEMARK_TOKEN: randomBytes(8).toString('hex') };
  const stack = await new TestStack(dir, env).start();
  const disk = join(dir, 'disk.img');
  const diskBytes = 64 * MiB;
  await makeSampleDisk(disk, diskBytes, 13);
  const agent = startTidemark(['agent', '--state', join(dir, 'agent'), '--process-server', stack.psUrl, '--machine', 'rl', '--disk', disk, '--mode', 'scan', '--interval', '1'], env);
  try {
    await waitUntil('the first point', async () => ((await stack.points('rl')).length ? true : undefined), 90_000);
    // The master target goes away; the process server acknowledges a change it cannot ship...
    const seqBefore = Math.max(...(await stack.points('rl')).map((p) => p.seq));
    await stack.mt.stop();
    const changedBlocks = 10;
    await writeRandomBlocks(disk, diskBytes, changedBlocks, seededRandom(14));
    await waitUntil('the change spooled', async () => {
      const s = (await stack.status()).find((d) => d.machine === 'rl');
      return s && s.receivedSeq > s.appliedSeq ? true : undefined;
    }, 60_000);
    // ...and then loses its disk.
    await stack.ps.kill9();
    await rm(join(dir, 'ps'), { recursive: true, force: true });
    const expected = await sha256File(disk);
    await stack.startMasterTarget();
    await stack.startProcessServer();
    await waitUntil('the resync', async () => (passes(agent).some((p) => p.kind === 'resync') ? true : undefined), 90_000);
    const resync = passes(agent).find((p) => p.kind === 'resync')!;
    assert.match(agent.stderr(), /lost acknowledged data/);
    assert.match(agent.stderr(), /block hashes taken from the replica/);
    assert.ok(resync.changedBlocks >= 1 && resync.changedBlocks <= 2 * changedBlocks, `only the lost blocks are sent again (${resync.changedBlocks})`);
    // Every point past those made before the master target stopped comes after the resync.
    const latest = await waitUntil('a point after the resync', async () => (await stack.points('rl')).find((p) => p.seq > seqBefore), 60_000);
    assert.equal(await stack.imageHash('rl', latest.id), expected, 'the replica equals the source again');
  } finally {
    await agent.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
