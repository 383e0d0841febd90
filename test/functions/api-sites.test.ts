/**
 * Enrollment and the site endpoints through `app.request`, and the job state machine's edges:
 * expired keys, credentials used out of place, events from the wrong master target, failures
 * and timeouts, a drill whose plan cannot run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SiteCommand } from '../../core/control-plane/protocol.ts';
import { drainSiteEvents } from '../../functions/domain/site-events.ts';
import { runScheduledWork } from '../../functions/domain/scheduled-work.ts';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.ts';

let cp: TestControlPlane;
let vaultId: string;
let key: string;
before(async () => {
  cp = await startTestControlPlane();
  vaultId = (await cp.call('POST', '/api/v1/vaults', { name: 'sites' })).body.id;
  key = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, { ttlSeconds: 30 * 86400 })).body.key;
});
after(() => cp.close());

const enroll = async (body: Record<string, unknown>) => cp.call('POST', '/api/v1/enroll', { registrationKey: key, siteName: 'main', ...body }, null);

async function poll(credential: string): Promise<SiteCommand[]> {
  const r = await cp.call('GET', '/api/v1/site/commands?waitSeconds=0', undefined, credential);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const cmds = r.body.commands as { receipt: string; command: SiteCommand }[];
  if (cmds.length) assert.equal((await cp.call('POST', '/api/v1/site/commands/ack', { receipts: cmds.map((c) => c.receipt) }, credential)).status, 200);
  return cmds.map((c) => c.command);
}

describe('enrollment', () => {
  it('refuses an unknown, expired or revoked registration key with 401', async () => {
    assert.equal((await cp.call('POST', '/api/v1/enroll', { registrationKey: 'rgk_aaaaaaaaaaaaaaaaaaaa.x', role: 'agent', name: 'a', siteName: 's', disks: [{ name: 'd', sizeBytes: 1 }] }, null)).status, 401);
    const short = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, { ttlSeconds: 60 })).body;
    cp.clock.ms += 61_000;
    const expired = await cp.call('POST', '/api/v1/enroll', { registrationKey: short.key, role: 'process-server', name: 'x', siteName: 's' }, null);
    assert.equal(expired.status, 401);
    assert.match(expired.body.error, /expired/);
    const revoked = (await cp.call('POST', `/api/v1/vaults/${vaultId}/registration-keys`, {})).body;
    assert.equal((await cp.call('DELETE', `/api/v1/vaults/${vaultId}/registration-keys/${revoked.id}`)).status, 200);
    assert.equal((await cp.call('POST', '/api/v1/enroll', { registrationKey: revoked.key, role: 'process-server', name: 'x', siteName: 's' }, null)).status, 401);
  });

  it('validates enrollment fields and needs disks from an agent', async () => {
    const badName = await enroll({ role: 'agent', name: '../etc', disks: [{ name: 'd0', sizeBytes: 1 }] });
    assert.equal(badName.status, 400);
    assert.equal(badName.body.field, 'name');
    const noDisks = await enroll({ role: 'agent', name: 'a1' });
    assert.equal(noDisks.status, 400);
    assert.equal(noDisks.body.field, 'disks');
    const badRole = await enroll({ role: 'hypervisor', name: 'h' });
    assert.equal(badRole.body.field, 'role');
  });

  it('gives each component its own credential and discovers the disks of agents', async () => {
    const a = await enroll({ role: 'agent', name: 'web1', disks: [{ name: 'disk0', sizeBytes: 1024 }, { name: 'disk1', sizeBytes: 2048 }] });
    assert.equal(a.status, 201);
    assert.equal(a.body.disks.length, 2);
    const b = await enroll({ role: 'agent', name: 'web2', disks: [{ name: 'disk0', sizeBytes: 1024 }] });
    assert.notEqual(a.body.credential, b.body.credential);
    assert.equal(a.body.siteId, b.body.siteId, 'one site per name');
    const m = await cp.call('GET', `/api/v1/vaults/${vaultId}/machines/${a.body.machineId}`);
    assert.deepEqual(m.body.disks.map((d: { name: string; state: null }) => [d.name, d.state]), [['disk0', null], ['disk1', null]]);
  });
});

describe('site endpoints', () => {
  it('keep operators and sites apart (403) and agents off server endpoints', async () => {
    const ps = (await enroll({ role: 'process-server', name: 'ps-x' })).body;
    const agent = (await enroll({ role: 'agent', name: 'lonely', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body;
    assert.equal((await cp.call('GET', '/api/v1/site/commands?waitSeconds=0')).status, 403, 'operator token on a site endpoint');
    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, ps.credential)).status, 403, 'site credential on an operator endpoint');
    assert.equal((await cp.call('GET', '/api/v1/site/commands?waitSeconds=0', undefined, agent.credential)).status, 403);
    assert.equal((await cp.call('GET', '/api/v1/site/assignment', undefined, ps.credential)).status, 403);
    const assignment = await cp.call('GET', '/api/v1/site/assignment', undefined, agent.credential);
    assert.deepEqual(assignment.body.processServer, null);
    assert.equal((await cp.call('GET', '/api/v1/site/commands?waitSeconds=0', undefined, null)).status, 401);
    assert.equal((await cp.call('GET', '/api/v1/site/commands?waitSeconds=99', undefined, ps.credential)).body.field, 'waitSeconds');
  });

  it('redelivers a command that is not acknowledged', async () => {
    const ps = (await enroll({ role: 'process-server', name: 'ps-redeliver' })).body;
    const mt = (await enroll({ role: 'master-target', name: 'mt-redeliver' })).body;
    const agent = (await enroll({ role: 'agent', name: 'redeliver', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body;
    const policy = (await cp.call('POST', `/api/v1/vaults/${vaultId}/policies`, { name: 'p', rpoThresholdSeconds: 60, retentionSeconds: 3600 })).body;
    const on = await cp.call('PUT', `/api/v1/vaults/${vaultId}/machines/${agent.machineId}/protection`, { policyId: policy.id, processServerId: ps.serverId, masterTargetId: mt.serverId });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    const cmds = cp.ctx.siteQueues.open(`site-${ps.serverId}`);
    const [first] = await (await cmds).receive({ visibilityTimeoutSeconds: 0 });
    assert.equal(JSON.parse(first!.body).type, 'protection.enable');
    const again = await cp.call('GET', '/api/v1/site/commands?waitSeconds=0', undefined, ps.credential);
    assert.equal(again.body.commands[0].receiveCount, 2);
  });

  it('refuses protection with a server of the wrong role (400) or none enrolled (409)', async () => {
    const agent = (await enroll({ role: 'agent', name: 'wrong-role', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body;
    const ps = (await enroll({ role: 'process-server', name: 'ps-wrong' })).body;
    const policy = (await cp.call('POST', `/api/v1/vaults/${vaultId}/policies`, { name: 'p2', rpoThresholdSeconds: 60, retentionSeconds: 3600 })).body;
    const r = await cp.call('PUT', `/api/v1/vaults/${vaultId}/machines/${agent.machineId}/protection`, { policyId: policy.id, masterTargetId: ps.serverId });
    assert.equal(r.status, 400);
    assert.equal(r.body.field, 'masterTargetId');

    const empty = (await cp.call('POST', '/api/v1/vaults', { name: 'empty' })).body;
    const k = (await cp.call('POST', `/api/v1/vaults/${empty.id}/registration-keys`, {})).body.key;
    const lone = (await cp.call('POST', '/api/v1/enroll', { registrationKey: k, role: 'agent', name: 'x', siteName: 's', disks: [{ name: 'd', sizeBytes: 1 }] }, null)).body;
    const p = (await cp.call('POST', `/api/v1/vaults/${empty.id}/policies`, { name: 'p', rpoThresholdSeconds: 60, retentionSeconds: 3600 })).body;
    assert.equal((await cp.call('PUT', `/api/v1/vaults/${empty.id}/machines/${lone.machineId}/protection`, { policyId: p.id })).status, 409);
  });
});

describe('jobs', () => {
  let mt: { serverId: string; credential: string };
  let other: { serverId: string; credential: string };
  let machineId: string;
  let planId: string;

  before(async () => {
    const ps = (await enroll({ role: 'process-server', name: 'ps-jobs' })).body;
    mt = (await enroll({ role: 'master-target', name: 'mt-jobs' })).body;
    other = (await enroll({ role: 'master-target', name: 'mt-other' })).body;
    machineId = (await enroll({ role: 'agent', name: 'jobbed', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body.machineId;
    const policy = (await cp.call('POST', `/api/v1/vaults/${vaultId}/policies`, { name: 'j', rpoThresholdSeconds: 60, retentionSeconds: 3600 })).body;
    await cp.call('PUT', `/api/v1/vaults/${vaultId}/machines/${machineId}/protection`, { policyId: policy.id, processServerId: ps.serverId, masterTargetId: mt.serverId });
    await poll(mt.credential);
    planId = (await cp.call('POST', `/api/v1/vaults/${vaultId}/plans`, { name: 'one', groups: [{ name: 'g', machineIds: [machineId] }] })).body.id;
  });

  it('refuses a plan naming an unknown machine, and a job of an unprotected plan', async () => {
    const bad = await cp.call('POST', `/api/v1/vaults/${vaultId}/plans`, { name: 'bad', groups: [{ name: 'g', machineIds: ['mch_aaaaaaaaaaaaaaaaaaaa'] }] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.field, 'groups.0.machineIds.0');
    const loose = (await enroll({ role: 'agent', name: 'loose', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body;
    const plan = (await cp.call('POST', `/api/v1/vaults/${vaultId}/plans`, { name: 'loose', groups: [{ name: 'g', machineIds: [loose.machineId] }] })).body;
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vaultId}/jobs`, { kind: 'failover', planId: plan.id })).status, 409);
  });

  it('ignores events from a master target the job did not use, and fails on a failed machine', async () => {
    const job = (await cp.call('POST', `/api/v1/vaults/${vaultId}/jobs`, { kind: 'failover', planId })).body;
    const [start] = await poll(mt.credential);
    assert.equal(start?.type, 'failover.start');
    assert.deepEqual(await poll(other.credential), []);

    const ready = { jobId: job.id, machineId, type: 'machine-ready', point: { time: new Date(cp.clock.ms).toISOString() } };
    assert.equal((await cp.call('POST', '/api/v1/site/job-events', { events: [ready] }, other.credential)).status, 202);
    await drainSiteEvents(cp.ctx);
    assert.equal((await cp.call('GET', `/api/v1/vaults/${vaultId}/jobs/${job.id}`)).body.state, 'running');

    const failed = { jobId: job.id, machineId, type: 'machine-failed', error: 'disk image could not be materialised' };
    await cp.call('POST', '/api/v1/site/job-events', { events: [failed] }, mt.credential);
    await drainSiteEvents(cp.ctx);
    const after = (await cp.call('GET', `/api/v1/vaults/${vaultId}/jobs/${job.id}`)).body;
    assert.equal(after.state, 'failed');
    assert.match(after.error, /could not be materialised/);
    assert.equal(after.steps[0].state, 'failed');
  });

  it('fails a job whose master target never answers once its deadline passes', async () => {
    const job = (await cp.call('POST', `/api/v1/vaults/${vaultId}/jobs`, { kind: 'test-failover', planId })).body;
    await poll(mt.credential);
    cp.clock.ms += cp.ctx.settings.jobTimeoutSeconds * 1000 + 1;
    await runScheduledWork(cp.ctx);
    const after = (await cp.call('GET', `/api/v1/vaults/${vaultId}/jobs/${job.id}`)).body;
    assert.equal(after.state, 'failed');
    assert.match(after.error, /timed out/);

    const cleanup = await cp.call('POST', `/api/v1/vaults/${vaultId}/jobs`, { kind: 'cleanup', planId, testFailoverJobId: job.id });
    assert.equal(cleanup.status, 201);
    const [cmd] = await poll(mt.credential);
    assert.equal(cmd?.type, 'test-failover.cleanup');
  });

  it('raises a stream-stalled alert when nobody reports on a protected disk', async () => {
    const disk = (await cp.call('GET', `/api/v1/vaults/${vaultId}/machines/${machineId}`)).body.disks[0];
    await cp.call('POST', '/api/v1/site/heartbeat', { disks: [{ machineId, diskId: disk.id, state: 'CONTINUOUS', lagSeconds: 1, backlogBytes: 0 }] }, mt.credential);
    await drainSiteEvents(cp.ctx);
    cp.clock.ms += (cp.ctx.settings.reportStaleSeconds + 1) * 1000;
    await runScheduledWork(cp.ctx);
    const alerts = (await cp.call('GET', `/api/v1/vaults/${vaultId}/alerts?kind=stream-stalled`)).body.items;
    assert.equal(alerts.length, 1);
    assert.match(alerts[0].message, /no report/);
  });

  it('records a failed drill report when the plan cannot run', async () => {
    const loose = (await enroll({ role: 'agent', name: 'drill-loose', disks: [{ name: 'disk0', sizeBytes: 1 }] })).body;
    const plan = (await cp.call('POST', `/api/v1/vaults/${vaultId}/plans`, { name: 'unprotected', groups: [{ name: 'g', machineIds: [loose.machineId] }] })).body;
    const drill = (await cp.call('POST', `/api/v1/vaults/${vaultId}/drills`, { planId: plan.id, intervalSeconds: 3600 })).body;
    await runScheduledWork(cp.ctx);
    const reports = (await cp.call('GET', `/api/v1/vaults/${vaultId}/drills/${drill.id}/reports`)).body.items;
    assert.equal(reports.length, 1);
    assert.equal(reports[0].outcome, 'failed');
    assert.match(reports[0].error, /not protected/);
    assert.equal((await cp.call('GET', `/api/v1/vaults/${vaultId}/drills/${drill.id}`)).body.phase, 'idle');
  });
});
