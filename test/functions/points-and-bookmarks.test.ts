/**
 * The control plane's side of picking a point, of bookmarks and of the boot console pattern,
 * with this test playing the sites through the site client: a master target reports the
 * points it keeps (and only of its own machines); a job's point and the plan's console
 * pattern reach the master target in `failover.start`; a bookmark job goes to the process
 * server as `bookmark.request` and ends with its `machine-bookmarked` event; bad requests and
 * viewers are refused by the server.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import type { DiskPoints, PolledCommand, SiteCommand } from '../../core/control-plane/protocol.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';

let dataDir: string;
let cp: LocalControlPlane;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tidemark-points-'));
  cp = await startControlPlane({ dataDir, port: 0, scheduleIntervalMs: 3600_000 });
});
after(async () => {
  await cp.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${cp.url}/api/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json() };
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const r = await call(cp.adminToken, method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function nextCommand(client: ControlPlaneClient): Promise<SiteCommand> {
  const [polled] = await eventually<PolledCommand[]>('a command', async () => {
    const got = await client.pollCommands({ waitSeconds: 2, maxCommands: 1 });
    return got.length > 0 && got;
  });
  await client.ackCommand(polled!.receipt);
  return polled!.command;
}

function diskPoints(diskId: string, seqs: number[]): DiskPoints {
  const p = (seq: number, kind: 'crash' | 'app' | 'bookmark' = 'crash', name?: string) =>
    ({ id: String(seq), seq, time: new Date(Date.parse('2030-06-01T08:00:00Z') + seq * 1000).toISOString(), kind, ...(name ? { name } : {}) });
  const recent = [...seqs].reverse().map((s) => p(s));
  return {
    diskId, appliedSeq: seqs.at(-1)!, oldest: p(seqs[0]!), newest: p(seqs.at(-1)!), tiers: { fullSeconds: 3600, minuteTierSeconds: 86400 },
    recent, marked: [p(seqs[1]!, 'app'), p(seqs[0]!, 'bookmark', 'before upgrade')],
  };
}

it('stores the points master targets report, carries a picked point and the boot pattern, and runs bookmarks through the process server', async () => {
  const vault = await admin('POST', '/vaults', { name: 'points' });
  const v = `/vaults/${vault.id}`;
  const { key } = await admin('POST', `${v}/registration-keys`, { ttlSeconds: 3600 });
  const policy = await admin('POST', `${v}/policies`, { name: 'gold', rpoThresholdSeconds: 60, retentionSeconds: 86400 });
  const psEnrollment = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: 'http://mt1.example:7402' });
  const db = await enroll(cp.url, {
    registrationKey: key, role: 'agent', name: 'db1', siteName: 'primary', hostname: 'db1', os: 'linux',
    disks: [{ name: 'disk0', sizeBytes: 1 << 30 }, { name: 'disk1', sizeBytes: 1 << 30 }],
  });
  const app = await enroll(cp.url, { registrationKey: key, role: 'agent', name: 'app1', siteName: 'primary', hostname: 'app1', os: 'linux', disks: [{ name: 'disk0', sizeBytes: 1 << 30 }] });
  const ps = new ControlPlaneClient({ url: cp.url, credential: psEnrollment.credential });
  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });
  await admin('PUT', `${v}/machines/${db.machineId}/protection`, { policyId: policy.id });
  for (const c of [ps, mt]) assert.equal((await nextCommand(c)).type, 'protection.enable');
  const viewer = (await admin('POST', '/operator-tokens', { name: 'auditor', role: 'viewer' })).token;

  // Points: the master target's report is kept per machine; a machine it does not protect is ignored.
  const [d0, d1] = db.disks!.map((d) => d.id);
  assert.deepEqual((await admin('GET', `${v}/machines/${db.machineId}/recovery-points`)).disks, []);
  await mt.sendRecoveryPoints({ machines: [
    { machineId: db.machineId!, disks: [diskPoints(d0!, [10, 20, 30]), diskPoints(d1!, [5, 6]), diskPoints('dsk_notthismachine000', [1, 2])] },
    { machineId: app.machineId!, disks: [diskPoints(app.disks![0]!.id, [1, 2])] },
  ] });
  const stored = await call(viewer, 'GET', `${v}/machines/${db.machineId}/recovery-points`);
  assert.equal(stored.status, 200);
  assert.deepEqual(stored.json.disks.map((d: DiskPoints) => [d.diskId, d.recent.map((p) => p.seq)]), [[d0, [30, 20, 10]], [d1, [6, 5]]]);
  assert.equal(stored.json.disks[0].marked[1].name, 'before upgrade');
  assert.ok(stored.json.reportedAt);
  assert.deepEqual((await admin('GET', `${v}/machines/${app.machineId}/recovery-points`)).disks, [], 'app1 is not protected by mt1');
  await assert.rejects(ps.sendRecoveryPoints({ machines: [{ machineId: db.machineId!, disks: [] }] }), /only master targets report recovery points/);

  // A picked point and the plan's console pattern travel in failover.start.
  const plan = await admin('POST', `${v}/plans`, { name: 'db1', bootCheck: true, bootConsolePattern: 'db1 login:', groups: [{ name: 'all', machineIds: [db.machineId] }] });
  assert.equal(plan.bootConsolePattern, 'db1 login:');
  const job = await admin('POST', `${v}/jobs`, { kind: 'test-failover', planId: plan.id, point: { id: '20', diskId: d0 } });
  assert.deepEqual(job.point, { id: '20', diskId: d0 });
  assert.equal(job.bootConsolePattern, 'db1 login:');
  const start = await nextCommand(mt);
  assert.equal(start.type, 'failover.start');
  assert.deepEqual((start as Extract<SiteCommand, { type: 'failover.start' }>).point, { id: '20', diskId: d0 });
  assert.equal((start as Extract<SiteCommand, { type: 'failover.start' }>).bootConsolePattern, 'db1 login:');
  const byTime = await admin('POST', `${v}/jobs`, { kind: 'failover', planId: plan.id, point: { time: '2030-06-01T08:00:20.000Z' } });
  assert.deepEqual(((await nextCommand(mt)) as Extract<SiteCommand, { type: 'failover.start' }>).point, { time: '2030-06-01T08:00:20.000Z' });
  assert.deepEqual(byTime.point, { time: '2030-06-01T08:00:20.000Z' });

  // Bad points and names are refused with the field named.
  await admin('PUT', `${v}/machines/${app.machineId}/protection`, { policyId: policy.id, processServerId: psEnrollment.serverId, masterTargetId: mtEnrollment.serverId });
  for (const c of [ps, mt]) assert.equal((await nextCommand(c)).type, 'protection.enable');
  const both = await admin('POST', `${v}/plans`, { name: 'both', groups: [{ name: 'all', machineIds: [db.machineId, app.machineId] }] });
  const refusals: Array<[unknown, RegExp, string]> = [
    [{ kind: 'test-failover', planId: both.id, point: { id: '20', diskId: d0 } }, /only a plan of one machine/, 'point'],
    [{ kind: 'test-failover', planId: plan.id, point: { id: '20', diskId: app.disks![0]!.id } }, /is not a disk of db1/, 'point.diskId'],
    [{ kind: 'test-failover', planId: plan.id, point: { id: 'abc', diskId: d0 } }, /./, 'point'],
    [{ kind: 'test-failover', planId: plan.id, point: { time: 'yesterday' } }, /./, 'point'],
    [{ kind: 'bookmark', planId: plan.id }, /needs a name/, 'name'],
    [{ kind: 'bookmark', planId: plan.id, name: 'x', point: 'latest' }, /takes no point/, 'point'],
    [{ kind: 'test-failover', planId: plan.id, name: 'x' }, /takes no name/, 'name'],
  ];
  for (const [body, message, field] of refusals) {
    const r = await call(cp.adminToken, 'POST', `${v}/jobs`, body);
    assert.equal(r.status, 400, JSON.stringify([body, r.json]));
    assert.match(r.json.error, message);
    assert.ok(String(r.json.field).startsWith(field), `${JSON.stringify(r.json)} names ${field}`);
  }

  // A bookmark of a plan: the process server gets the request; the master target cannot answer it.
  const bookmark = await admin('POST', `${v}/jobs`, { kind: 'bookmark', planId: both.id, name: 'before upgrade' });
  assert.equal(bookmark.bookmarkName, 'before upgrade');
  const ask = await nextCommand(ps) as Extract<SiteCommand, { type: 'bookmark.request' }>;
  assert.equal(ask.type, 'bookmark.request');
  assert.equal(ask.name, 'before upgrade');
  assert.deepEqual(ask.machines.map((m) => m.name).sort(), ['app1', 'db1']);
  const tagged = (machineId: string) => ({
    jobId: bookmark.id, machineId, type: 'machine-bookmarked' as const,
    point: { time: new Date().toISOString(), seq: 77, kind: 'bookmark' as const }, checks: [{ name: 'bookmark disk0', passed: true, detail: 'tagged at seq 77' }],
  });
  await mt.sendJobEvent(tagged(db.machineId!));
  await ps.sendJobEvent([tagged(db.machineId!), tagged(app.machineId!)]);
  const done = await eventually('the bookmark job to end', async () => {
    const j = await admin('GET', `${v}/jobs/${bookmark.id}`);
    return j.state !== 'running' && j;
  });
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  assert.deepEqual(done.steps.map((s: { point: { seq: number } }) => s.point.seq), [77, 77]);
  assert.ok(done.events.some((e: { message: string }) => /sent to 1 process server/.test(e.message)));

  // A viewer can neither pick a point nor bookmark: the server refuses.
  for (const body of [{ kind: 'bookmark', planId: plan.id, name: 'nope' }, { kind: 'test-failover', planId: plan.id, point: { id: '20', diskId: d0 } }]) {
    const r = await call(viewer, 'POST', `${v}/jobs`, body);
    assert.equal(r.status, 403);
    assert.match(r.json.error, /needs the operator role/);
  }
  const audit = (await admin('GET', `${v}/audit`)).items as Array<{ action: string; detail: Record<string, unknown> }>;
  assert.ok(audit.some((a) => a.action === 'job.start' && a.detail.name === 'before upgrade'));
  assert.ok(audit.some((a) => a.action === 'job.start' && JSON.stringify(a.detail.point) === JSON.stringify({ id: '20', diskId: d0 })));
});

it('raises retention-shortened from a report saying space limits shortened a disk\'s window, and clears it with a report that does not', async () => {
  const vault = await admin('POST', '/vaults', { name: 'retention' });
  const v = `/vaults/${vault.id}`;
  const { key } = await admin('POST', `${v}/registration-keys`, { ttlSeconds: 3600 });
  const policy = await admin('POST', `${v}/policies`, { name: 'week', rpoThresholdSeconds: 60, retentionSeconds: 7 * 86400 });
  await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: 'http://mt1.example:7402' });
  const db = await enroll(cp.url, {
    registrationKey: key, role: 'agent', name: 'db1', siteName: 'primary', hostname: 'db1', os: 'linux',
    disks: [{ name: 'disk0', sizeBytes: 1 << 30 }, { name: 'disk1', sizeBytes: 1 << 30 }],
  });
  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });
  await admin('PUT', `${v}/machines/${db.machineId}/protection`, { policyId: policy.id });
  const [d0, d1] = db.disks!.map((d) => d.id);
  // The kept history reaches back two days of the policy's seven.
  const twoDaysAgo = new Date(Date.now() - 2 * 86400_000).toISOString();
  const disk = (diskId: string, shortenedForSpaceTime?: string): DiskPoints => {
    const d = diskPoints(diskId, [10, 20, 30]);
    return { ...d, oldest: { ...d.oldest!, time: twoDaysAgo }, ...(shortenedForSpaceTime ? { shortenedForSpaceTime } : {}) };
  };
  const alerts = async (state: string) => (await admin('GET', `${v}/alerts?kind=retention-shortened&state=${state}`)).items as Array<{ diskId: string; state: string; message: string }>;

  // Two days of history without any deletion for space: a young protection, no alert.
  await mt.sendRecoveryPoints({ machines: [{ machineId: db.machineId!, disks: [disk(d0!), disk(d1!)] }] });
  assert.deepEqual(await alerts('all'), []);

  // disk0 was shortened for space: its alert is raised, disk1's is not.
  const shortenedAt = new Date(Date.now() - 60_000).toISOString();
  await mt.sendRecoveryPoints({ machines: [{ machineId: db.machineId!, disks: [disk(d0!, shortenedAt), disk(d1!)] }] });
  const raised = await alerts('active');
  assert.deepEqual(raised.map((a) => a.diskId), [d0]);
  assert.equal(raised[0]!.message, `disk disk0 keeps recovery points back to ${twoDaysAgo} only, not the policy's 7 d: `
    + 'the master target deleted older journal to stay within its space limits');
  assert.equal((await admin('GET', `${v}/machines/${db.machineId}/recovery-points`)).disks[0].shortenedForSpaceTime, shortenedAt, 'the field is kept with the points');
  const dashboard = (await admin('GET', `${v}/alerts`)).items as Array<{ kind: string }>;
  assert.deepEqual(dashboard.map((a) => a.kind), ['retention-shortened'], 'the default (active) listing shows it');

  // The master target restarted, or an older one reports: no field, the alert clears in place.
  await mt.sendRecoveryPoints({ machines: [{ machineId: db.machineId!, disks: [disk(d0!), disk(d1!)] }] });
  assert.deepEqual(await alerts('active'), []);
  const cleared = await alerts('cleared');
  assert.deepEqual(cleared.map((a) => [a.diskId, a.state]), [[d0, 'cleared']]);
});
