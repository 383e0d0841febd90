/**
 * `tidemark up` secure by default, with real processes: the agent enrolls with a registration
 * key and pushes over mutual TLS; `tidemark status` and `tidemark export` find the operator
 * certificate that up wrote, by the server's address; the exported point equals the source by
 * hash; plain http to the TLS ports gets nowhere.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freeQuad } from '../helpers/ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';

const run = promisify(execFile);
let dir: string;
let port: number;
const running: Running[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-up-tls-'));
  port = await freeQuad();
});
after(async () => {
  for (const r of running) await r.stop();
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ TIDEMARK_LOG_LEVEL: 'warn', TIDEMARK_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'config') });
function start(args: string[]): Running {
  const r = startTidemark(args, env());
  running.push(r);
  return r;
}
const cli = (args: string[]) => run(process.execPath, [join(import.meta.dirname, '../../bin/tidemark.js'), ...args], { env: { ...process.env, ...env() }, timeout: 120_000 });

it('replicates over mutual TLS and the CLI exports a point equal to the source', { timeout: 300_000 }, async () => {
  const data = join(dir, 'tm');
  const up = start(['up', '--data', data, '--port', String(port)]);
  await up.waitFor(/Stop with Ctrl-C/, 90_000);
  assert.match(up.stdout(), /TLS\s+mutual, vault CA pinned/);
  const cpUrl = `http://127.0.0.1:${port}`;
  const psUrl = `https://127.0.0.1:${port + 1}`;
  const mtUrl = `https://127.0.0.1:${port + 2}`;
  const key = up.stdout().match(/--key (\S+)/)![1]!;
  const adminToken = (await readFile(join(data, 'admin.token'), 'utf8')).trim();
  const { vaultId } = JSON.parse(await readFile(join(data, 'up.json'), 'utf8')) as { vaultId: string };
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${cpUrl}/api/v1/vaults/${vaultId}${path}`, {
      method, headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  // Plain http to a TLS port gets no answer worth the name.
  await assert.rejects(fetch(`http://127.0.0.1:${port + 1}/v1/status`).then(async (r) => { if (r.ok) return r; throw new Error(String(r.status)); }));

  const img = join(dir, 'web-01.img');
  await writeFile(img, randomBytes(8 << 20));
  const source = createHash('sha256').update(await readFile(img)).digest('hex');
  const agent = start(['agent', '--control-plane', cpUrl, '--key', key, '--state', join(dir, 'agent'), '--machine', 'web-01', '--disk', img, '--mode', 'scan', '--interval', '1']);
  await agent.waitFor(/waiting for protection/, 90_000);
  const machine = await waitUntil('the machine', async () => ((await api('GET', '/machines')).items as Array<{ id: string; name: string }>).find((m) => m.name === 'web-01'), 60_000);
  const { policyId } = JSON.parse(await readFile(join(data, 'up.json'), 'utf8')) as { policyId: string };
  await api('PUT', `/machines/${machine.id}/protection`, { policyId });
  await agent.waitFor(new RegExp(`protected: pushing to ${psUrl.replace(/[./]/g, '\\$&')}`), 60_000);

  // The operator's commands find up's certificate by the server's address.
  const point = await waitUntil('a consistent point', async () => {
    const { stdout } = await cli(['points', '--master-target', mtUrl, '--machine', 'web-01', '--disk', 'disk0', '--json']).catch(() => ({ stdout: '[]' }));
    return (JSON.parse(stdout) as Array<{ id: string; consistent: boolean }>).find((p) => p.consistent);
  }, 120_000);
  const status = JSON.parse((await cli(['status', '--process-server', psUrl, '--json'])).stdout) as { disks: Array<{ machine: string }> };
  assert.deepEqual(status.disks.map((d) => d.machine), ['web-01']);
  const out = join(dir, 'export.img');
  await cli(['export', '--master-target', mtUrl, '--machine', 'web-01', '--disk', 'disk0', '--at', point.id, '--out', out]);
  assert.equal(createHash('sha256').update(await readFile(out)).digest('hex'), source, 'the exported point equals the source');

  // Without the index, the CLI says what it needs.
  const bare = await run(process.execPath, [join(import.meta.dirname, '../../bin/tidemark.js'), 'status', '--process-server', psUrl], {
    env: { ...process.env, ...env(), XDG_CONFIG_HOME: join(dir, 'elsewhere') }, timeout: 120_000,
  }).then(() => undefined, (err: { stderr: string }) => err.stderr);
  assert.match(bare ?? '', /no operator certificate for 127\.0\.0\.1:\d+/);
});
