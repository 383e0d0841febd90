/**
 * Renewal end to end, with certificates valid 20 seconds and components renewing with half
 * of that left: the process server (a real process) renews its own certificate, keeps it and
 * its key in its data folder, and serves it from the next handshake without restarting; the
 * master target accepts it; an agent's renewed certificate is accepted by the process server,
 * and a running agent (a real process) renews its own and pushes with the new one.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { access, open, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { renewCertificate } from '../../core/control-plane/certificate-renewal.ts';
import { ControlPlaneClient } from '../../core/control-plane/client.ts';
import { requestJson } from '../../core/http/client.ts';
import { normalizeSerial, serialOfPem } from '../../core/tls/serial.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { waitUntil } from '../helpers/tidemark-process.ts';
import { startEnrolledScanAgent, startEnrolledServers, type EnrolledServers } from './enrolled-servers.ts';

let s: EnrolledServers;
before(async () => {
  s = await startEnrolledServers({
    settings: { certificateValiditySeconds: 20 },
    env: { TIDEMARK_CERTIFICATE_RENEW_FRACTION: '0.5', TIDEMARK_REVOCATION_POLL_SECONDS: '1' },
  });
});
after(() => s?.close());

const get = (url: string, path: string, tls: TlsIdentity) => requestJson<any>(url, 'GET', path, undefined, { tls, timeoutMs: 10_000 });

/** The serial of the certificate a server presents in a new handshake. */
function servedSerial(url: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: [ca], servername: undefined, checkServerIdentity: () => undefined }, () => {
      const serial = normalizeSerial(socket.getPeerCertificate().serialNumber);
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

it('a server renews its certificate, keeps it, and serves it without restarting', { timeout: 120_000 }, async () => {
  await s.protectedAgent('web-01');
  const pid = s.ps.child.pid;
  const first = await s.serverIdentity('ps');
  const servedFirst = await servedSerial(s.psUrl, first.ca);
  const servedNext = await waitUntil('a renewed certificate served', async () => {
    const now = await servedSerial(s.psUrl, first.ca);
    return now !== servedFirst ? now : undefined;
  }, 60_000);
  assert.equal(s.ps.child.pid, pid);
  assert.equal(s.ps.child.exitCode, null, 'the process server was not restarted');

  // What it serves is what it keeps: certificate in enrollment.json, its key beside it.
  const kept = await waitUntil('the data folder holding the served certificate', async () => {
    const id = await s.serverIdentity('ps');
    return serialOfPem(id.cert) === servedNext ? id : undefined;
  }, 10_000);
  assert.ok(new X509Certificate(kept.cert).checkPrivateKey(createPrivateKey(kept.key)), 'the kept key is the certificate\'s');
  await assert.rejects(access(join(s.dir, 'ps', 'enrollment-key.pem.next')), 'no renewal left half-done');
  const before = new X509Certificate(first.cert);
  const after = new X509Certificate(kept.cert);
  assert.equal(after.subjectAltName, before.subjectAltName, 'the same identity and host');

  // The control plane recorded it as a renewal, and the master target accepts it.
  const psId = (await s.admin('GET', `/vaults/${s.vaultId}/servers`)).items.find((x: { name: string }) => x.name === 'ps1').id;
  const records = (await s.admin('GET', `/vaults/${s.vaultId}/certificates?subjectId=${psId}`)).items as Array<{ serial: string; renewalOf: string | null }>;
  assert.ok(records.find((r) => r.serial === servedNext)?.renewalOf, JSON.stringify(records));
  const shipped = await get(s.mtUrl, '/v1/streams/web-01/disk0', kept);
  assert.equal(shipped.status, 200, JSON.stringify(shipped.body));
  assert.equal((await get(s.psUrl, '/v1/status', await s.operator())).status, 200, 'clients still get in');
  assert.doesNotMatch(s.ps.stderr() + s.mt.stderr(), /renewal failed/);
});

it("an agent's renewed certificate is accepted by the process server", { timeout: 60_000 }, async () => {
  const agent = await s.protectedAgent('db-01');
  await waitUntil('the process server accepts the agent', async () => (await get(s.psUrl, '/v1/streams/db-01/disk0', agent)).status === 200 || undefined, 30_000);
  const renewed = await renewCertificate(new ControlPlaneClient({ url: s.cp.url, credential: agent.credential }), agent, 'db-01');
  assert.notEqual(renewed.serial, serialOfPem(agent.cert));
  const r = await get(s.psUrl, '/v1/streams/db-01/disk0', { ca: agent.ca, cert: renewed.cert, key: renewed.key });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.machine, 'db-01');
});

it('a running agent renews its certificate and pushes with the new one', { timeout: 180_000 }, async () => {
  const { agent, state, img, machineId } = await startEnrolledScanAgent(s, { TIDEMARK_CERTIFICATE_RENEW_FRACTION: '0.5' });
  try {
    const enrolled = JSON.parse(await readFile(join(state, 'enrollment.json'), 'utf8')) as { certificate: string; caCertificate: string };
    const first: TlsIdentity = { cert: enrolled.certificate, ca: enrolled.caCertificate, key: await readFile(join(state, 'enrollment-key.pem'), 'utf8') };
    await s.protect(machineId);
    await agent.waitFor(/protected: pushing to/, 30_000);
    await waitUntil('the agent renewed', async () => {
      const e = JSON.parse(await readFile(join(state, 'enrollment.json'), 'utf8')) as { certificate: string };
      return e.certificate !== first.cert || undefined;
    }, 60_000);

    // With its first certificate revoked, the agent still pushes: it uses the renewed one. The
    // control plane is stopped first, so that its bearer credential cannot stand in (the
    // process server cannot have it confirmed).
    await s.admin('POST', `/vaults/${s.vaultId}/certificates/${serialOfPem(first.cert)}/revoke`, {});
    await waitUntil('the first certificate refused', async () => (await get(s.psUrl, '/v1/streams/app-01/disk0', first)).status === 403 || undefined, 15_000);
    const operator = await s.operator();
    await s.stopControlPlane();
    const applied = async () => (await get(s.mtUrl, '/v1/streams/app-01/disk0', operator)).body.nextSeq as number;
    const before = await applied();
    const fh = await open(img, 'r+');
    await fh.write(randomBytes(65536), 0, 65536, 0);
    await fh.close();
    await waitUntil('the change shipped', async () => (await applied()) > before || undefined, 30_000);
  } finally {
    await agent.stop();
  }
});
