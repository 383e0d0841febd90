/**
 * The end-to-end replication scenario on loopback with the three real processes: seeded
 * random writes into a 256 MiB image between scans, the source hashed at each scan, every
 * recovery point exported with the CLI and compared with its hash. Optionally one component
 * is killed with SIGKILL at random moments and restarted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeSampleDisk, sha256File, writeRandomBlocks, seededRandom } from '../../cli/demo/sample-disk.ts';
import { WriterGate } from '../../cli/demo/writer-gate.ts';
import { freePort } from '../helpers/ports.ts';
import type { Point } from '../../cli/commands/points.ts';
import { startTidemark, runTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';

const MiB = 1024 * 1024;

export interface ScenarioOptions {
  seed: number;
  diskBytes?: number;
  rounds?: number;
  blocksPerRound?: number;
  /** Which component to kill -9 and restart, and how often. */
  chaos?: { target: 'process-server' | 'master-target'; kills: number };
}


export async function replicationScenario(o: ScenarioOptions): Promise<{ points: number; kills: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'tm-e2e-'));
  const diskBytes = o.diskBytes ?? 256 * MiB;
  const token = randomBytes(12).toString('hex');
  const env = { TIDEMARK_TOKEN: token };
  const [psPort, mtPort] = [await freePort(), await freePort()];
  const psUrl = `http://127.0.0.1:${psPort}`;
  const mtUrl = `http://127.0.0.1:${mtPort}`;
  const mtArgs = ['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`];
  const psArgs = ['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', mtUrl];
  const running: Record<string, Running> = {};
  const start = async (name: 'mt' | 'ps') => {
    running[name] = startTidemark(name === 'mt' ? mtArgs : psArgs, env);
    await running[name].waitFor(/listening on/);
  };
  const disk = join(dir, 'source.img');
  await makeSampleDisk(disk, diskBytes, o.seed);
  const hashes = new Map<number, string>([[0, await sha256File(disk)]]);
  const gate = new WriterGate(dir);
  await gate.init();
  let agent: Running | undefined;
  let kills = 0;
  let chaosDone = Promise.resolve();
  let stopChaos = false;
  try {
    await start('mt');
    await start('ps');
    agent = startTidemark([
      'agent', '--state', join(dir, 'agent'), '--process-server', psUrl, '--machine', 'e2e-vm', '--disk', disk,
      '--mode', 'scan', '--interval', '2', '--freeze-cmd', gate.freezeCmd, '--thaw-cmd', gate.thawCmd,
    ], env);

    if (o.chaos) {
      const rand = seededRandom(o.seed * 31 + 7);
      const key = o.chaos.target === 'master-target' ? 'mt' : 'ps';
      chaosDone = (async () => {
        for (let k = 0; k < o.chaos!.kills && !stopChaos; k++) {
          await new Promise((r) => setTimeout(r, 200 + rand() * 2500));
          await running[key].kill9();
          kills++;
          await new Promise((r) => setTimeout(r, 100 + rand() * 400));
          await start(key);
        }
      })();
    }

    const points = async (): Promise<Point[]> => {
      const res = await fetch(`${mtUrl}/v1/machines/e2e-vm/disks/disk0/points`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`points: ${res.status}`);
      return ((await res.json()) as { points: Point[] }).points;
    };
    const settled = async (minGeneration: number) => {
      await waitUntil(`a scan of state ${minGeneration} to reach the master target`, async () => {
        const gens = await gate.generations();
        if (!gens.includes(minGeneration)) return undefined;
        return (await points()).length >= gens.length ? true : undefined;
      }, 120_000);
    };

    await settled(0);
    const rand = seededRandom(o.seed);
    for (let g = 1; g <= (o.rounds ?? 4); g++) {
      await gate.write(g, async () => {
        await writeRandomBlocks(disk, diskBytes, o.blocksPerRound ?? 150, rand);
        hashes.set(g, await sha256File(disk));
      });
      await settled(g);
    }
    stopChaos = true;
    await chaosDone;
    await agent.stop();
    // Scans that froze before the agent stopped may still be landing.
    const generations = await gate.generations();
    const all = await waitUntil('every frozen scan to reach the master target', async () => {
      const p = await points();
      return p.length >= generations.length ? p : undefined;
    });

    assert.equal(all.length, generations.length, 'one recovery point per scan');
    for (const [i, p] of all.entries()) {
      assert.equal(p.consistent, true);
      assert.equal(p.kind, 'app', 'scans ran under the freeze hook');
      if (i > 0) assert.ok(p.seq > all[i - 1].seq && Date.parse(p.time) >= Date.parse(all[i - 1].time));
      const out = join(dir, `export-${p.id}.img`);
      const r = await runTidemark(['export', '--master-target', mtUrl, '--machine', 'e2e-vm', '--disk', 'disk0', '--at', p.id, '--out', out], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(out), hashes.get(generations[i]), `point ${p.id} (scan ${i + 1}) equals the source in state ${generations[i]}`);
      await rm(out);
    }
    // The CLI's JSON listing has the documented shape.
    const listed = await runTidemark(['points', '--master-target', mtUrl, '--machine', 'e2e-vm', '--disk', 'disk0', '--json'], env);
    const parsed = JSON.parse(listed.stdout) as Point[];
    assert.deepEqual(parsed.map((p) => Object.keys(p).sort()), all.map(() => ['consistent', 'id', 'kind', 'seq', 'time']));
    return { points: all.length, kills };
  } catch (e) {
    const logs = Object.entries(running).map(([k, r]) => `--- ${k} stderr ---\n${r.stderr().slice(-4000)}`).join('\n');
    (e as Error).message += `\n${logs}\n--- agent stdout ---\n${agent?.stdout().slice(-3000)}\n--- agent stderr ---\n${agent?.stderr().slice(-4000)}\n--- freezes ---\n${await readFile(gate.freezeLog, 'utf8').catch(() => '')}`;
    throw e;
  } finally {
    stopChaos = true;
    await chaosDone.catch(() => undefined);
    await agent?.stop();
    for (const r of Object.values(running)) await r.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
