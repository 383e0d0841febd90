/**
 * Revocation and renewal through the control plane's API: every issued certificate is kept by
 * serial; an admin revokes one (audited, idempotent; the component's site credential too if
 * asked) and every enrolled component is served the list; a component renews its own certificate with proof of
 * its current key, for the same identity and names, and is refused when that certificate is
 * revoked, expired, someone else's, or the proof is wrong.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { renewalRequest } from '../../core/control-plane/certificate-renewal.ts';
import { serialOfPem } from '../../core/tls/serial.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import { startTestControlPlane, type TestControlPlane } from '../functions/support/control-plane.ts';

let cp: TestControlPlane;
let vaultId: string;

interface Enrolled { credential: string; cert: string; key: string; id: string }

async function enroll(role: 'agent' | 'process-server', name: string): Promise<Enrolled> {
  const { key: registrationKey } = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, {})).body;
  const keys = await generateKeyPair();
  const r = await cp.call('POST', '/api/v1/enroll', {
    registrationKey, role, name, siteName: 'main', csr: await createCsr(keys, name),
    ...(role === 'agent' ? { disks: [{ name: 'disk0', sizeBytes: 1 << 20 }] } : { url: 'https://ps.example:7401' }),
  }, null);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { credential: r.body.credential, cert: r.body.certificate, key: keys.privateKeyPem, id: r.body.machineId ?? r.body.serverId };
}

async function renew(who: Enrolled, current = who, tweak: (req: Record<string, string>) => void = () => {}) {
  const { request, keyPem } = await renewalRequest(current, 'x');
  tweak(request as unknown as Record<string, string>);
  return { ...(await cp.call('POST', '/api/v1/site/certificate/renew', request, who.credential)), keyPem };
}

before(async () => {
  cp = await startTestControlPlane();
  vaultId = (await cp.call('POST', '/api/v1/vaults', { name: 'certs' })).body.id;
});
after(() => cp.close());

describe('revocation', () => {
  it('keeps every certificate by serial and lets an admin revoke one, once, with an audit entry', async () => {
    const agent = await enroll('agent', 'web-01');
    const ps = await enroll('process-server', 'ps1');
    const serial = serialOfPem(agent.cert);
    const listed = (await cp.call('GET', `/api/v1/vaults/${vaultId}/certificates?subjectId=${agent.id}`)).body.items;
    assert.deepEqual(listed.map((c: any) => [c.serial, c.role, c.name, c.revokedAt]), [[serial, 'agent', 'web-01', null]]);

    assert.deepEqual((await cp.call('GET', '/api/v1/site/revocations', undefined, ps.credential)).body, { v: 1, vaultId, revoked: [] });
    const r = await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serial}/revoke`, { reason: 'machine decommissioned' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.revokedAt);
    assert.equal(r.body.reason, 'machine decommissioned');
    const again = await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serial.toUpperCase()}/revoke`, {});
    assert.equal(again.body.revokedAt, r.body.revokedAt, 'revoking again changes nothing');

    const served = (await cp.call('GET', '/api/v1/site/revocations', undefined, ps.credential)).body;
    assert.deepEqual(served.revoked.map((e: any) => [e.serial, e.role, e.subjectId, e.name, e.revokedAt]), [[serial, 'agent', agent.id, 'web-01', r.body.revokedAt]]);
    assert.deepEqual((await cp.call('GET', '/api/v1/site/revocations', undefined, agent.credential)).body, served, 'agents get it too');
    assert.equal((await cp.call('GET', '/api/v1/site/revocations', undefined, null)).status, 401);
    const audit = (await cp.call('GET', `/api/v1/vaults/${vaultId}/audit`)).body.items ?? [];
    assert.ok(audit.some((a: any) => a.action === 'certificate.revoke' && a.targetId === serial), JSON.stringify(audit));
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/abc123/revoke`, {})).status, 404);
  });

  it('leaves the site credential alone unless asked to revoke it too', async () => {
    const agent = await enroll('agent', 'app-01');
    const other = await enroll('agent', 'app-02');
    const assignment = (who: Enrolled) => cp.call('GET', '/api/v1/site/assignment', undefined, who.credential);
    await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serialOfPem(agent.cert)}/revoke`, {});
    assert.equal((await assignment(agent)).status, 200, 'the certificate alone was revoked');
    const r = await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serialOfPem(agent.cert)}/revoke`, { revokeCredentials: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await assignment(agent)).status, 401);
    assert.equal((await assignment(other)).status, 200, 'other components keep theirs');
    const audit = (await cp.call('GET', `/api/v1/vaults/${vaultId}/audit`)).body.items;
    assert.ok(audit.some((a: any) => a.action === 'credential.revoke' && a.targetId === agent.id && a.detail.credentials === 1), JSON.stringify(audit));
  });

  it('is for admins only', async () => {
    const agent = await enroll('agent', 'web-02');
    const { token } = (await cp.call('POST', '/api/v1/operator-tokens', { name: 'op', role: 'operator' })).body;
    const r = await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serialOfPem(agent.cert)}/revoke`, {}, token);
    assert.equal(r.status, 403);
  });
});

describe('renewal', () => {
  it('gives a new certificate of the same identity and names, recorded as renewing the old one', async () => {
    const ps = await enroll('process-server', 'ps-renew');
    const r = await renew(ps);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const [before, after] = [new X509Certificate(ps.cert), new X509Certificate(r.body.certificate)];
    assert.notEqual(after.serialNumber, before.serialNumber);
    assert.equal(after.subjectAltName, before.subjectAltName, 'same identity URI and host');
    assert.equal(after.subject, before.subject);
    assert.ok(after.checkPrivateKey((await import('node:crypto')).createPrivateKey(r.keyPem)), 'for the new key');
    const record = (await cp.call('GET', `/api/v1/vaults/${vaultId}/certificates?subjectId=${ps.id}`)).body.items.find((c: any) => c.serial === r.body.serial);
    assert.equal(record.renewalOf, serialOfPem(ps.cert));
  });

  it("is refused for a revoked or expired certificate, another component's, or without the current key's signature", async () => {
    const agent = await enroll('agent', 'db-01');
    const other = await enroll('agent', 'db-02');
    const wrongKey = await renew(agent, { ...agent, key: other.key });
    assert.equal(wrongKey.status, 400);
    assert.match(wrongKey.body.error, /signature/);
    const someoneElses = await renew(agent, other);
    assert.equal(someoneElses.status, 403);
    assert.match(someoneElses.body.error, /names another identity/);

    await cp.call('POST', `/api/v1/vaults/${vaultId}/certificates/${serialOfPem(other.cert)}/revoke`, {});
    const revoked = await renew(other);
    assert.equal(revoked.status, 403);
    assert.match(revoked.body.error, /was revoked at/);

    const saved = cp.clock.ms;
    cp.clock.ms += 366 * 86_400_000;
    try {
      const expired = await renew(agent);
      assert.equal(expired.status, 403);
      assert.match(expired.body.error, /not valid now/);
    } finally {
      cp.clock.ms = saved;
    }
    assert.equal((await renew(agent)).status, 201, 'the same request is fine while it is valid');
  });
});
