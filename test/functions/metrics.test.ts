/**
 * The control plane's /api/v1/metrics: operators only, Prometheus text that parses, and a
 * process server's spool as its heartbeat reported it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetrics } from '../../core/metrics.ts';
import { drainSiteEvents } from '../../functions/domain/site-events.ts';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.ts';

let cp: TestControlPlane;
before(async () => {
  cp = await startTestControlPlane();
});
after(() => cp.close());

test('metrics need an operator, parse, and show a process server\'s spool level as reported', async () => {
  const vaultId = (await cp.call('POST', '/api/v1/vaults', { name: 'metrics' })).body.id;
  const key = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, { ttlSeconds: 3600 })).body.key;
  const ps = (await cp.call('POST', '/api/v1/enroll', { registrationKey: key, siteName: 'main', role: 'process-server', name: 'ps-1', url: 'http://127.0.0.1:7401' }, null)).body;
  const spool = { usedBytes: 850, limitBytes: 1000, level: 'warning' };
  assert.equal((await cp.call('POST', '/api/v1/site/heartbeat', { disks: [], spool }, ps.credential)).status, 202);
  await drainSiteEvents(cp.ctx);
  const server = (await cp.call('GET', `/api/v1/vaults/${vaultId}/servers`)).body.items.find((s: { name: string }) => s.name === 'ps-1');
  assert.deepEqual(server.spool, spool);

  assert.equal((await cp.app.request('/api/v1/metrics')).status, 401);
  assert.equal((await cp.app.request('/api/v1/metrics', { headers: { authorization: `Bearer ${ps.credential}` } })).status, 403);
  const r = await cp.app.request('/api/v1/metrics', { headers: { authorization: `Bearer ${cp.adminToken}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const m = parseMetrics(await r.text());
  const labels = `vault="${vaultId}",server="ps-1",role="process-server"`;
  assert.equal(m.get(`tidemark_control_plane_spool_used_bytes{${labels}}`), 850);
  assert.equal(m.get(`tidemark_control_plane_spool_limit_bytes{${labels}}`), 1000);
  assert.ok(m.has(`tidemark_control_plane_server_heartbeat_age_seconds{${labels}}`));
  assert.ok(m.get('tidemark_control_plane_requests_total{status="2xx"}')! >= 3);
});
