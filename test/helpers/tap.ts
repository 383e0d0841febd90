/** A tap-mode agent in front of a real process server and master target on loopback, for end-to-end tests. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { freePort } from './ports.ts';
import { TestStack } from './stack.ts';
import { startTidemark, type Running } from './tidemark-process.ts';

export interface Tap {
  dir: string;
  stack: TestStack;
  agent: Running;
  agentArgs: string[];
  uri: string;
  disk: string;
  env: Record<string, string>;
}

/** Starts the stack and an agent serving `initial` (or `diskBytes` of zeros) as machine `name`. */
export async function startTap(name: string, o: { extra?: string[]; initial?: Buffer; diskBytes?: number } = {}): Promise<Tap> {
  const dir = await mkdtemp(join(tmpdir(), `tm-tap-${name}-`));
  const env = { TIDEMARK_TOKEN: randomBytes(8).toString('hex') };
  const stack = await new TestStack(dir, env).start();
  let agent: Running | undefined;
  try {
    const disk = join(dir, 'disk.img');
    await writeFile(disk, o.initial ?? Buffer.alloc(o.diskBytes ?? 64 * 1024 * 1024));
    const port = await freePort();
    const agentArgs = ['agent', '--state', join(dir, 'agent'), '--process-server', stack.psUrl, '--machine', name, '--disk', disk, '--mode', 'tap', '--nbd', `127.0.0.1:${port}`, ...(o.extra ?? [])];
    agent = startTidemark(agentArgs, env);
    await agent.waitFor(/serving 1 disk/);
    return { dir, stack, agent, agentArgs, uri: `nbd://127.0.0.1:${port}/disk0`, disk, env };
  } catch (err) {
    // Nothing of a failed start may outlive it: live servers would keep the test file running.
    await agent?.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function stopTap(t: Tap): Promise<void> {
  await t.agent.stop();
  await t.stack.stop();
  await rm(t.dir, { recursive: true, force: true });
}

/** The disk image at a point, hashed as it streams from the master target's export API. */
export async function exportSha(t: Tap, machine: string, at: string): Promise<string> {
  const res = await fetch(`${t.stack.mtUrl}/v1/machines/${machine}/disks/disk0/image?at=${at}`, { headers: { authorization: `Bearer ${t.env.TIDEMARK_TOKEN}` } });
  assert.equal(res.status, 200, await res.clone().text().catch(() => ''));
  const h = createHash('sha256');
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) h.update(chunk);
  return h.digest('hex');
}

/** Runs `f`, adding the agent's and the stack's logs to any error. */
export function withLogs<T>(t: Tap, f: () => Promise<T>): Promise<T> {
  return f().catch((e: Error) => {
    e.message += `\n--- agent ---\n${t.agent.stdout().slice(-2000)}\n${t.agent.stderr().slice(-4000)}\n${t.stack.logs()}`;
    throw e;
  });
}
