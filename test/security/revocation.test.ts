/**
 * Revocation end to end, with the master target and process server as real processes enrolled
 * over https (they fetch the vault's list every second here): a revoked agent certificate is
 * refused by the process server, a revoked process server certificate by the master target,
 * each with 403 naming the certificate while /healthz stays open; the list is kept in the
 * server's data folder and still applies after a restart without the control plane; a
 * client refuses a server whose certificate is on its list, and a running agent refuses its
 * process server once that server's certificate is revoked.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerUnreachableError, requestJson } from '../../core/http/client.ts';
import { RevocationList } from '../../core/tls/revocation-list.ts';
import { serialOfPem } from '../../core/tls/serial.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { waitUntil } from '../helpers/tidemark-process.ts';
import { startEnrolledScanAgent, startEnrolledServers, type EnrolledServers } from './enrolled-servers.ts';

let s: EnrolledServers;
before(async () => {
  s = await startEnrolledServers({ env: { TIDEMARK_REVOCATION_POLL_SECONDS: '1' } });
});
after(() => s?.close());

const get = (url: string, path: string, tls: TlsIdentity) => requestJson<any>(url, 'GET', path, undefined, { tls, timeoutMs: 10_000 });
const revoke = (serial: string) => s.admin('POST', `/vaults/${s.vaultId}/certificates/${serial}/revoke`, { reason: 'test' });

it('a revoked agent certificate is refused by the process server once its list arrives, and after a restart without the control plane', { timeout: 120_000 }, async () => {
  const agent = await s.protectedAgent('web-01');
  const other = await s.protectedAgent('web-02');
  const path = (m: string) => `/v1/streams/${m}/disk0`;
  await waitUntil('the process server accepts the agent', async () => (await get(s.psUrl, path('web-01'), agent)).status === 200 || undefined, 30_000);
  await waitUntil('the process server accepts the other agent', async () => (await get(s.psUrl, path('web-02'), other)).status === 200 || undefined, 30_000);

  const serial = serialOfPem(agent.cert);
  const { revokedAt } = await revoke(serial);
  const refused = await waitUntil('the agent refused', async () => {
    const r = await get(s.psUrl, path('web-01'), agent);
    return r.status === 403 ? r : undefined;
  }, 10_000);
  assert.equal(refused.body.error, `certificate ${serial} (agent web-01) was revoked at ${revokedAt}`);
  assert.equal((await get(s.psUrl, '/healthz', agent)).status, 200, '/healthz stays open');
  assert.equal((await get(s.psUrl, path('web-02'), other)).status, 200, 'other agents are not affected');

  const kept = JSON.parse(await readFile(join(s.dir, 'ps', 'revocations.json'), 'utf8'));
  assert.equal(kept.v, 1);
  assert.deepEqual(kept.revoked.map((r: { serial: string }) => r.serial), [serial]);

  // Without the control plane, a restarted process server still refuses the certificate.
  await s.stopControlPlane();
  await s.ps.stop();
  s.ps = await s.start('ps');
  const again = await get(s.psUrl, path('web-01'), agent);
  assert.equal(again.status, 403, JSON.stringify(again.body));
  assert.match(again.body.error, new RegExp(`certificate ${serial} .* was revoked`));
  assert.equal((await get(s.psUrl, path('web-02'), other)).status, 200);
});

it('a revoked process server certificate is refused by the master target', { timeout: 120_000 }, async () => {
  // The control plane is back for this test (the first one stopped it): a fresh set of servers.
  await s.close();
  s = await startEnrolledServers({ env: { TIDEMARK_REVOCATION_POLL_SECONDS: '1' } });
  await s.protectedAgent('web-01');
  const ps = await s.serverIdentity('ps');
  await waitUntil('the master target lets the process server ship web-01', async () => (await get(s.mtUrl, '/v1/streams/web-01/disk0', ps)).status === 200 || undefined, 30_000);
  const serial = serialOfPem(ps.cert);
  await revoke(serial);
  const refused = await waitUntil('the process server refused', async () => {
    const r = await get(s.mtUrl, '/v1/streams/web-01/disk0', ps);
    return r.status === 403 ? r : undefined;
  }, 10_000);
  assert.match(refused.body.error, new RegExp(`^certificate ${serial} \\(process-server ps1\\) was revoked at `));
  assert.equal((await get(s.mtUrl, '/healthz', ps)).status, 200);
  assert.equal((await get(s.mtUrl, '/v1/machines', await s.operator())).status, 200, 'operators are not affected');
});

it("a client refuses a server whose certificate is on its list", { timeout: 60_000 }, async () => {
  const mt = await s.serverIdentity('mt');
  const operator = await s.operator();
  const list = await RevocationList.open(join(s.dir, 'client'), s.vaultId);
  const client = { ...operator, revocations: list };
  assert.equal((await get(s.mtUrl, '/v1/machines', client)).status, 200);
  await list.replace({ v: 1, vaultId: s.vaultId, revoked: [{ serial: serialOfPem(mt.cert), revokedAt: '2030-01-01T00:00:00.000Z', notAfter: '2031-01-01T00:00:00.000Z', role: 'master-target', subjectId: 'x', name: 'mt1' }] }, Date.now());
  await assert.rejects(get(s.mtUrl, '/v1/machines', client), (err: Error) => {
    assert.ok(err instanceof PeerUnreachableError);
    assert.match(err.message, new RegExp(`refused ${s.mtUrl.replace(/[./]/g, '\\$&')}: the server's certificate ${serialOfPem(mt.cert)} was revoked at 2030`));
    return true;
  });
});

it('a running agent refuses its process server once that server\'s certificate is revoked', { timeout: 180_000 }, async () => {
  await s.close();
  s = await startEnrolledServers({ env: { TIDEMARK_REVOCATION_POLL_SECONDS: '1' } });
  const { agent, state, img, machineId } = await startEnrolledScanAgent(s, { TIDEMARK_REVOCATION_POLL_SECONDS: '1' });
  try {
    await s.protect(machineId);
    await agent.waitFor(/protected: pushing to/, 30_000);
    const operator = await s.operator();
    await waitUntil('the disk at the master target', async () => ((await get(s.mtUrl, '/v1/streams/app-01/disk0', operator)).body.nextSeq as number) > 1 || undefined, 60_000);
    assert.doesNotMatch(agent.stderr(), /was revoked/);

    const serial = serialOfPem((await s.serverIdentity('ps')).cert);
    await revoke(serial);
    await waitUntil('the agent has the list', async () => (await readFile(join(state, 'revocations.json'), 'utf8').catch(() => '')).includes(serial) || undefined, 15_000);
    const fh = await open(img, 'r+');
    await fh.write(randomBytes(65536), 0, 65536, 0);
    await fh.close();
    await waitUntil('the agent refusing the process server', async () => agent.stderr().includes(`the server's certificate ${serial} was revoked at`) || undefined, 30_000);
  } finally {
    await agent.stop();
  }
});
