/**
 * The vault's certificate authority and enrollment with certificates, through the control
 * plane's API: the CA is made with the vault and kept 0600; a component's certificate names
 * the identity the control plane gave it, whatever its request asked; bad requests, expired,
 * revoked and used-up registration keys are refused with a message that says which.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import { identityOfPeerCertificate } from '../../core/tls/identity.ts';
import { startTestControlPlane, type TestControlPlane } from '../functions/support/control-plane.ts';

let cp: TestControlPlane;
let vaultId: string;
before(async () => {
  cp = await startTestControlPlane();
  vaultId = (await cp.call('POST', '/api/v1/vaults', { name: 'certs' })).body.id;
});
after(() => cp.close());

const newKey = async (ttlSeconds = 3600, maxUses?: number) =>
  (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, { ttlSeconds, ...(maxUses ? { maxUses } : {}) })).body.key as string;

const csrFor = async (name: string) => createCsr(await generateKeyPair(), name);

/** The identity as a TLS server would read it from the certificate. */
function identityOf(pem: string) {
  const c = new X509Certificate(pem);
  const subject = Object.fromEntries(c.subject.split('\n').map((l) => l.split('=') as [string, string]));
  return identityOfPeerCertificate({ subject, subjectaltname: c.subjectAltName });
}

describe('vault certificate authority', () => {
  it('is made with the vault and kept in the store as a 0600 file', async () => {
    const r = await cp.call('GET', `/api/v1/vaults/${vaultId}/ca`);
    assert.equal(r.status, 200);
    const ca = new X509Certificate(r.body.certificate);
    assert.ok(ca.ca, 'a CA certificate');
    assert.match(ca.subject, new RegExp(vaultId));
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const objects = join(cp.dataDir, 'control-plane', 'objects', 'v1', 'vault-ca');
    const files = await readdir(objects);
    assert.deepEqual(files, [`${vaultId}.json@obj`]);
    assert.equal((await stat(join(objects, files[0]!))).mode & 0o777, 0o600);
    assert.equal((await stat(join(cp.dataDir, 'control-plane', 'objects'))).mode & 0o777, 0o700, 'the store is closed to other users');
  });
});

describe('enrollment with a certificate request', () => {
  it('issues an agent a client certificate naming its vault, role, machine id and name', async () => {
    const r = await cp.call('POST', '/api/v1/enroll', {
      registrationKey: await newKey(), role: 'agent', name: 'web-01', siteName: 'main',
      disks: [{ name: 'disk0', sizeBytes: 1 << 20 }], csr: await csrFor('someone-else'),
    }, null);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const cert = new X509Certificate(r.body.certificate);
    const ca = new X509Certificate(r.body.caCertificate);
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the vault CA');
    assert.deepEqual(identityOf(r.body.certificate), { vaultId, role: 'agent', id: r.body.machineId, name: 'web-01' }, 'the identity is the enrollment, not the request subject');
    assert.equal(cert.checkIP('127.0.0.1'), undefined, 'an agent certificate names no host');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'client authentication only');
  });

  it("issues a server a certificate for its URL's host", async () => {
    const r = await cp.call('POST', '/api/v1/enroll', {
      registrationKey: await newKey(), role: 'process-server', name: 'ps1', siteName: 'main', url: 'https://127.0.0.1:7401', csr: await csrFor('ps1'),
    }, null);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const cert = new X509Certificate(r.body.certificate);
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.deepEqual(identityOf(r.body.certificate), { vaultId, role: 'process-server', id: r.body.serverId, name: 'ps1' });
    const dns = await cp.call('POST', '/api/v1/enroll', {
      registrationKey: await newKey(), role: 'master-target', name: 'mt1', siteName: 'dr', url: 'https://mt1.example:7402', csr: await csrFor('mt1'),
    }, null);
    assert.equal(new X509Certificate(dns.body.certificate).checkHost('mt1.example'), 'mt1.example');
  });

  it('refuses a bad request without using up the key', async () => {
    const key = await newKey(3600, 1);
    const bad = await cp.call('POST', '/api/v1/enroll', { registrationKey: key, role: 'agent', name: 'a', siteName: 'main', disks: [{ name: 'disk0', sizeBytes: 1 }], csr: 'not a csr' }, null);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'csr');
    const good = await cp.call('POST', '/api/v1/enroll', { registrationKey: key, role: 'agent', name: 'a', siteName: 'main', disks: [{ name: 'disk0', sizeBytes: 1 }], csr: await csrFor('a') }, null);
    assert.equal(good.status, 201, 'the single use was still there');
  });
});

describe('registration keys', () => {
  const enrollWith = (key: string) => cp.call('POST', '/api/v1/enroll', { registrationKey: key, role: 'process-server', name: 'x', siteName: 'main' }, null);

  it('refuses an expired key, saying so', async () => {
    const key = await newKey(60);
    cp.clock.ms += 61_000;
    const r = await enrollWith(key);
    assert.equal(r.status, 401);
    assert.match(r.body.error, /^registration key rgk_\w+ expired at /);
    assert.ok(r.body.hint);
  });

  it('refuses a used-up key, saying so, and counts uses', async () => {
    const key = await newKey(3600, 2);
    assert.equal((await enrollWith(key)).status, 201);
    assert.equal((await enrollWith(key)).status, 201);
    const r = await enrollWith(key);
    assert.equal(r.status, 401);
    assert.match(r.body.error, /is used up \(2 of 2 enrollments\)/);
    const listed = (await cp.call('GET', `/api/v1/vaults/${vaultId}/registration-keys`)).body.items as Array<{ maxUses: number | null; uses: number }>;
    assert.ok(listed.some((k) => k.maxUses === 2 && k.uses === 2));
  });

  it('refuses a revoked key and an unknown one', async () => {
    const made = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, {})).body;
    await cp.call('DELETE', `/api/v1/vaults/${vaultId}/registration-keys/${made.id}`);
    assert.match((await enrollWith(made.key)).body.error, /was revoked/);
    const forged = made.key.replace(/\.[^.]+$/, '.wrong');
    assert.equal((await enrollWith(forged)).body.error, 'registration key is unknown', 'a wrong secret learns nothing about the key');
  });
});

describe('operator certificates', () => {
  it('are issued to admins only', async () => {
    const csr = await csrFor('ops');
    const r = await cp.call('POST', `/api/v1/vaults/${vaultId}/operator-certificates`, { name: 'ops', csr });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(identityOf(r.body.certificate), { vaultId, role: 'operator', id: r.body.id, name: 'ops' });
    const viewer = (await cp.call('POST', '/api/v1/operator-tokens', { name: 'v', role: 'viewer' })).body.token as string;
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vaultId}/operator-certificates`, { name: 'ops', csr }, viewer)).status, 403);
  });
});
