/**
 * The standalone `tidemark master-target` and `tidemark process-server` commands (what the
 * container images run) enrolled with https:// URLs, as real processes on 127.0.0.1: the
 * master target by flags, the process server by TIDEMARK_* variables alone. An enrolled agent
 * pushes over mutual TLS, the process server ships with its certificate, and the replica
 * equals the source by hash. Clients without a certificate of the vault get 401 (but
 * /healthz), plain http gets nowhere, and the settings that cannot work are usage errors.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getStream, requestJson, PeerUnreachableError } from '../../core/http/client.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { freePort } from '../helpers/ports.ts';
import { runTidemark, startTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';
import { makeVault, type TestVault } from './support.ts';

let dir: string;
let cp: LocalControlPlane;
let other: TestVault;
const running: Running[] = [];
const quiet = { TIDEMARK_LOG_LEVEL: 'warn', TIDEMARK_TOKEN: '' };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-standalone-tls-'));
  cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0 });
  other = await makeVault('other');
});
after(async () => {
  for (const r of running) await r.stop();
  await cp?.close();
  await other?.close();
  await rm(dir, { recursive: true, force: true });
});

function start(args: string[], env: Record<string, string> = {}): Running {
  const r = startTidemark(args, { ...quiet, ...env });
  running.push(r);
  return r;
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const r = await requestJson<any>(`${cp.url}/api/v1`, method, path, body, { token: cp.adminToken });
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const get = (url: string, path: string, tls?: TlsIdentity) => requestJson<any>(url, 'GET', path, undefined, { tls, timeoutMs: 10_000 });

it('serve HTTPS with client certificates and replicate a disk equal to its source', { timeout: 120_000 }, async () => {
  const vault = await admin('POST', '/vaults', { name: 'v' });
  const policy = await admin('POST', `/vaults/${vault.id}/policies`, { name: 'p', rpoThresholdSeconds: 300, retentionSeconds: 3600 });
  const { key } = await admin('POST', `/vaults/${vault.id}/registration-keys`, {});
  const [mtPort, psPort] = [await freePort(), await freePort()];
  const mtUrl = `https://127.0.0.1:${mtPort}`;
  const psUrl = `https://127.0.0.1:${psPort}`;

  const mt = start(['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`, '--retention', '1h',
    '--control-plane', cp.url, '--key', key, '--name', 'mt1', '--url', mtUrl]);
  // The process server as its container image runs it: everything from the environment.
  const ps = start(['process-server'], {
    TIDEMARK_DATA: join(dir, 'ps'), TIDEMARK_LISTEN: `127.0.0.1:${psPort}`, TIDEMARK_MASTER_TARGET: mtUrl,
    TIDEMARK_CONTROL_PLANE: cp.url, TIDEMARK_KEY: key, TIDEMARK_NAME: 'ps1', TIDEMARK_URL: psUrl,
  });
  await mt.waitFor(new RegExp(`master target listening on ${mtUrl.replace(/[./]/g, '\\$&')}`), 60_000);
  await ps.waitFor(new RegExp(`process server listening on ${psUrl.replace(/[./]/g, '\\$&')}`), 60_000);
  const enrolled = JSON.parse(await readFile(join(dir, 'ps', 'enrollment.json'), 'utf8')) as { url: string; certificate: string };
  assert.equal(enrolled.url, psUrl, 'the enrollment keeps the URL it was made with');

  const keys = await generateKeyPair();
  const issued = await admin('POST', `/vaults/${vault.id}/operator-certificates`, { name: 'ops', csr: await createCsr(keys, 'ops') });
  const operator: TlsIdentity = { key: keys.privateKeyPem, cert: issued.certificate, ca: issued.caCertificate };

  // Everything but /healthz needs a certificate of this vault.
  const noCert = { ...operator, cert: '', key: '' } as TlsIdentity;
  const foreign = { ...(await other.issue('operator', 'ops')), ca: operator.ca };
  for (const [url, path] of [[psUrl, '/v1/status'], [mtUrl, '/v1/machines']] as const) {
    assert.equal((await get(url, '/healthz', noCert)).status, 200, `${url}/healthz`);
    assert.equal((await get(url, path, noCert)).status, 401, `${url}${path} without a certificate`);
    assert.equal((await get(url, path, foreign)).status, 401, `${url}${path} with another vault's certificate`);
    assert.equal((await get(url, path, operator)).status, 200, `${url}${path} as the operator`);
    // A client pinning another CA refuses the server; plain http to the port gets no answer.
    await assert.rejects(get(url, path, await other.issue('operator', 'ops')), (err: Error) => err instanceof PeerUnreachableError && /not from this vault's CA/.test(err.message));
    await assert.rejects(fetch(url.replace('https:', 'http:') + path, { signal: AbortSignal.timeout(10_000) }));
  }

  const img = join(dir, 'web-01.img');
  await writeFile(img, randomBytes(8 << 20));
  const source = createHash('sha256').update(await readFile(img)).digest('hex');
  const agent = start(['agent', '--control-plane', cp.url, '--key', key, '--state', join(dir, 'agent'), '--machine', 'web-01', '--disk', img, '--mode', 'scan', '--interval', '1']);
  await agent.waitFor(/waiting for protection/, 60_000);
  const machine = await waitUntil('the machine', async () => ((await admin('GET', `/vaults/${vault.id}/machines`)).items as Array<{ id: string; name: string }>).find((m) => m.name === 'web-01'), 30_000);
  const servers = (await admin('GET', `/vaults/${vault.id}/servers`)).items as Array<{ id: string; name: string; url: string }>;
  assert.deepEqual(servers.map((s) => [s.name, s.url]).sort(), [['mt1', mtUrl], ['ps1', psUrl]]);
  await admin('PUT', `/vaults/${vault.id}/machines/${machine.id}/protection`, {
    policyId: policy.id, processServerId: servers.find((s) => s.name === 'ps1')!.id, masterTargetId: servers.find((s) => s.name === 'mt1')!.id,
  });
  await agent.waitFor(new RegExp(`protected: pushing to ${psUrl.replace(/[./]/g, '\\$&')}`), 30_000);

  const point = await waitUntil('a consistent point at the master target', async () => {
    const r = await get(mtUrl, '/v1/machines/web-01/disks/disk0/points', operator);
    return r.status === 200 ? (r.body.points as Array<{ id: string; consistent: boolean }>).find((p) => p.consistent) : undefined;
  }, 60_000);
  const res = await getStream(mtUrl, `/v1/machines/web-01/disks/disk0/image?at=${point.id}`, { tls: operator });
  const replica = createHash('sha256');
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) replica.update(chunk);
  assert.equal(replica.digest('hex'), source, 'the replica equals the source');
  assert.doesNotMatch(ps.stderr() + mt.stderr(), /"level":"error"/);
});

it('refuses https:// settings that cannot work, saying what is missing', { timeout: 120_000 }, async () => {
  const [noCp, noIdentity] = await Promise.all([
    runTidemark(['master-target', '--data', join(dir, 'mt-x'), '--listen', '127.0.0.1:0', '--url', 'https://127.0.0.1:1'], quiet),
    runTidemark(['process-server', '--data', join(dir, 'ps-x'), '--listen', '127.0.0.1:0', '--master-target', 'https://127.0.0.1:1'], quiet),
  ]);
  assert.equal(noCp.code, 1);
  assert.match(noCp.stderr, /an https:\/\/ --url needs a certificate/);
  assert.match(noCp.stderr, /--control-plane and --key/);
  assert.equal(noIdentity.code, 1);
  assert.match(noIdentity.stderr, /master target https:\/\/127\.0\.0\.1:1 speaks TLS and wants this process server's certificate/);
});
