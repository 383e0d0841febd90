/**
 * The API the console adds (session, machine history from heartbeats, plan editing) and the
 * console's files as served, without a browser.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';

let dataDir: string;
let cp: LocalControlPlane;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tidemark-console-api-'));
  cp = await startControlPlane({ dataDir, port: 0, scheduleIntervalMs: 3600_000 });
});
after(async () => {
  await cp.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json() };
}
const admin = async (method: string, path: string, body?: unknown) => {
  const r = await call(cp.adminToken, method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
};

async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('serves the console with a strict content security policy', async () => {
  const root = await fetch(`${cp.url}/`, { redirect: 'manual' });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get('location'), '/console/');
  const page = await fetch(`${cp.url}/console/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  const html = await page.text();
  assert.doesNotMatch(html, /https?:\/\//, 'no asset from outside the machine');
  assert.equal((await fetch(`${cp.url}/console/js/main.js`)).status, 200);
  assert.equal((await fetch(`${cp.url}/console/..%2Fconsole-routes.ts`)).status, 404);
  assert.equal((await fetch(`${cp.url}/console/nothing.js`)).status, 404);
});

it('tells who is signed in, keeps a machine history from heartbeats and edits plans by role', async () => {
  assert.deepEqual((await admin('GET', '/session')).role, 'admin');
  const viewer = (await admin('POST', '/operator-tokens', { name: 'auditor', role: 'viewer' })).token;
  assert.deepEqual(await call(viewer, 'GET', '/session').then((r) => r.json.role), 'viewer');
  assert.equal((await fetch(`${cp.url}/api/v1/session`)).status, 401);

  const vault = await admin('POST', '/vaults', { name: 'console' });
  const { key } = await admin('POST', `/vaults/${vault.id}/registration-keys`, {});
  const policy = await admin('POST', `/vaults/${vault.id}/policies`, { name: 'gold', rpoThresholdSeconds: 60, retentionSeconds: 86400 });
  await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: 'http://mt1.example:7402' });
  const agent = await enroll(cp.url, {
    registrationKey: key, role: 'agent', name: 'db1', siteName: 'primary', hostname: 'db1.example', os: 'linux',
    disks: [{ name: 'disk0', sizeBytes: 1 << 30 }],
  });
  const machineId = agent.machineId!;
  const diskId = agent.disks![0]!.id;
  await admin('PUT', `/vaults/${vault.id}/machines/${machineId}/protection`, { policyId: policy.id });

  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });
  const now = Date.now();
  for (const [i, seq] of [100, 160, 250].entries()) {
    await mt.sendHeartbeat({
      disks: [{
        machineId, diskId, state: 'CONTINUOUS', lagSeconds: 3 + i, backlogBytes: 4096 * i,
        latestPoint: { time: new Date(now - (3 - i) * 1000).toISOString(), seq, kind: i === 1 ? 'app-consistent' : 'crash-consistent' },
      }],
    });
  }
  const history = await admin('GET', `/vaults/${vault.id}/machines/${machineId}/history`);
  assert.equal(history.points.length, 3);
  assert.deepEqual(history.points.map((p: { seq: number }) => p.seq), [100, 160, 250]);
  assert.equal(history.points[1].kind, 'app-consistent');
  const changes = history.hour.reduce((sum: number, s: { changes: number }) => sum + s.changes, 0);
  assert.equal(changes, 150);
  assert.equal(Math.max(...history.hour.map((s: { lagSeconds: number }) => s.lagSeconds)), 5);
  assert.ok(history.day.length >= 1);
  const fleet = await call(viewer, 'GET', `/vaults/${vault.id}/history`);
  assert.equal(fleet.status, 200);
  assert.equal(fleet.json.items.length, 1);
  await eventually('the heartbeat applied', async () => (await admin('GET', `/vaults/${vault.id}/machines/${machineId}`)).disks[0].state === 'CONTINUOUS');

  const plan = await admin('POST', `/vaults/${vault.id}/plans`, { name: 'erp', groups: [{ name: 'data', machineIds: [machineId] }] });
  const edit = { name: 'erp-2', bootCheck: true, groups: [{ name: 'db', machineIds: [machineId] }] };
  assert.equal((await call(viewer, 'PUT', `/vaults/${vault.id}/plans/${plan.id}`, edit)).status, 403);
  const edited = await admin('PUT', `/vaults/${vault.id}/plans/${plan.id}`, edit);
  assert.equal(edited.name, 'erp-2');
  assert.equal(edited.groups[0].name, 'db');
  assert.equal(edited.createdAt, plan.createdAt);
  const twice = await call(cp.adminToken, 'PUT', `/vaults/${vault.id}/plans/${plan.id}`, { name: 'x', groups: [{ name: 'a', machineIds: [machineId, machineId] }] });
  assert.equal(twice.status, 400);
  await admin('POST', `/vaults/${vault.id}/jobs`, { kind: 'test-failover', planId: plan.id });
  assert.equal((await call(cp.adminToken, 'PUT', `/vaults/${vault.id}/plans/${plan.id}`, edit)).status, 409);
  assert.equal((await call(viewer, 'POST', `/vaults/${vault.id}/jobs`, { kind: 'test-failover', planId: plan.id })).status, 403);
});
