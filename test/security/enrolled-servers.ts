/**
 * A control plane in this process and an enrolled master target and process server as real
 * processes (`tidemark master-target`, `tidemark process-server`) serving HTTPS on 127.0.0.1,
 * for the revocation and renewal tests. Agents and operators are enrolled through the API
 * with keys made here, so that the control plane keeps their certificates as it does any.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestJson } from '../../core/http/client.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import type { ControlPlaneSettings } from '../../functions/deps.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { freePort } from '../helpers/ports.ts';
import { startTidemark, type Running } from '../helpers/tidemark-process.ts';

export interface EnrolledServers {
  readonly dir: string;
  cp: LocalControlPlane;
  readonly vaultId: string;
  readonly mtUrl: string;
  readonly psUrl: string;
  mt: Running;
  ps: Running;
  admin(method: string, path: string, body?: unknown): Promise<any>;
  /** A registration key of the vault. */
  readonly key: string;
  /** Protects the machine by this process server and master target. */
  protect(machineId: string): Promise<void>;
  /** An agent enrolled through the API, its machine protected by this process server and master target. */
  protectedAgent(name: string): Promise<TlsIdentity & { machineId: string; credential: string }>;
  operator(): Promise<TlsIdentity>;
  /** The certificate and key a server keeps in its data folder now. */
  serverIdentity(which: 'ps' | 'mt'): Promise<TlsIdentity>;
  /** (Re)starts a server process with the arguments it was first started with. */
  start(which: 'ps' | 'mt'): Promise<Running>;
  /** Stops the control plane: the servers can no longer reach it. */
  stopControlPlane(): Promise<void>;
  close(): Promise<void>;
}

const quiet = { TIDEMARK_LOG_LEVEL: 'warn', TIDEMARK_TOKEN: '' };
const escaped = (s: string) => s.replace(/[./]/g, '\\$&');

export async function startEnrolledServers(o: { settings?: Partial<ControlPlaneSettings>; env: Record<string, string> }): Promise<EnrolledServers> {
  const dir = await mkdtemp(join(tmpdir(), 'tidemark-certs-'));
  const cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0, settings: o.settings });
  let cpStopped = false;
  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await requestJson<any>(`${cp.url}/api/v1`, method, path, body, { token: cp.adminToken });
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const vault = await admin('POST', '/vaults', { name: 'v' });
  const policy = await admin('POST', `/vaults/${vault.id}/policies`, { name: 'p', rpoThresholdSeconds: 300, retentionSeconds: 3600 });
  const { key } = await admin('POST', `/vaults/${vault.id}/registration-keys`, {});
  const [mtPort, psPort] = [await freePort(), await freePort()];
  const mtUrl = `https://127.0.0.1:${mtPort}`;
  const psUrl = `https://127.0.0.1:${psPort}`;
  const args = {
    mt: ['master-target', '--data', join(dir, 'mt'), '--listen', `127.0.0.1:${mtPort}`, '--retention', '1h', '--control-plane', cp.url, '--key', key, '--name', 'mt1', '--url', mtUrl],
    ps: ['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', mtUrl, '--control-plane', cp.url, '--key', key, '--name', 'ps1', '--url', psUrl],
  };
  const start = async (which: 'ps' | 'mt') => {
    const r = startTidemark(args[which], { ...quiet, ...o.env });
    const url = which === 'ps' ? psUrl : mtUrl;
    await r.waitFor(new RegExp(`listening on ${escaped(url)}`), 60_000);
    return r;
  };
  const s: EnrolledServers = {
    dir, cp, vaultId: vault.id, mtUrl, psUrl, admin, start, key,
    async protect(machineId) {
      const servers = (await admin('GET', `/vaults/${vault.id}/servers`)).items as Array<{ id: string; name: string }>;
      await admin('PUT', `/vaults/${vault.id}/machines/${machineId}/protection`, {
        policyId: policy.id, processServerId: servers.find((x) => x.name === 'ps1')!.id, masterTargetId: servers.find((x) => x.name === 'mt1')!.id,
      });
    },
    mt: await start('mt'),
    ps: await start('ps'),
    async protectedAgent(name) {
      const keys = await generateKeyPair();
      const { key: agentKey } = await admin('POST', `/vaults/${vault.id}/registration-keys`, {});
      const e = await requestJson<any>(`${cp.url}/api/v1`, 'POST', '/enroll', {
        registrationKey: agentKey, role: 'agent', name, siteName: 'primary', disks: [{ name: 'disk0', sizeBytes: 1 << 20 }], csr: await createCsr(keys, name),
      });
      assert.equal(e.status, 201, JSON.stringify(e.body));
      await s.protect(e.body.machineId);
      return { key: keys.privateKeyPem, cert: e.body.certificate, ca: e.body.caCertificate, machineId: e.body.machineId, credential: e.body.credential };
    },
    async operator() {
      const keys = await generateKeyPair();
      const issued = await admin('POST', `/vaults/${vault.id}/operator-certificates`, { name: 'ops', csr: await createCsr(keys, 'ops') });
      return { key: keys.privateKeyPem, cert: issued.certificate, ca: issued.caCertificate };
    },
    async serverIdentity(which) {
      const e = JSON.parse(await readFile(join(dir, which, 'enrollment.json'), 'utf8')) as { certificate: string; caCertificate: string };
      return { cert: e.certificate, ca: e.caCertificate, key: await readFile(join(dir, which, 'enrollment-key.pem'), 'utf8') };
    },
    async stopControlPlane() {
      if (!cpStopped) await cp.close();
      cpStopped = true;
    },
    async close() {
      await s.ps?.stop();
      await s.mt?.stop();
      await s.stopControlPlane();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return s;
}

/**
 * `tidemark agent` in scan mode (every second), enrolled with the vault's key as machine
 * `app-01` over a 1 MiB image, once it waits for its machine to be protected.
 */
export async function startEnrolledScanAgent(s: EnrolledServers, env: Record<string, string>): Promise<{ agent: Running; state: string; img: string; machineId: string }> {
  const state = join(s.dir, 'agent');
  const img = join(s.dir, 'app-01.img');
  await writeFile(img, randomBytes(1 << 20));
  const agent = startTidemark(['agent', '--control-plane', s.cp.url, '--key', s.key, '--state', state, '--machine', 'app-01', '--disk', img, '--mode', 'scan', '--interval', '1'], { ...quiet, ...env });
  try {
    await agent.waitFor(/waiting for protection/, 60_000);
  } catch (e) {
    await agent.stop();
    throw e;
  }
  const { machineId } = JSON.parse(await readFile(join(state, 'enrollment.json'), 'utf8')) as { machineId: string };
  return { agent, state, img, machineId };
}
