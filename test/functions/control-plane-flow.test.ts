/**
 * The whole control plane in one process over HTTP: enrollment of a process server, a master
 * target and two agents; protection pushed through the site queues; heartbeats raising an RPO
 * alert; a plan's test failover run by this test playing the master target; and a scheduled
 * drill (on an injected clock) that leaves its report.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import type { FailoverStartCommand, JobEvent, PolledCommand, SiteCommand } from '../../core/control-plane/protocol.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';

const clock = { ms: Date.parse('2030-06-01T08:00:00Z') };
let dataDir: string;
let cp: LocalControlPlane;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tidemark-flow-'));
  cp = await startControlPlane({ dataDir, port: 0, now: () => clock.ms, scheduleIntervalMs: 3600_000 });
});
after(async () => {
  await cp.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${cp.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Retries `probe` until it returns a truthy value (site reports are applied asynchronously). */
async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls until one command arrives, acknowledges it and returns it. */
async function nextCommand(client: ControlPlaneClient): Promise<SiteCommand> {
  const [polled, ...rest] = await eventually<PolledCommand[]>('a command', async () => {
    const got = await client.pollCommands({ waitSeconds: 2, maxCommands: 1 });
    return got.length > 0 && got;
  });
  assert.equal(rest.length, 0);
  await client.ackCommand(polled.receipt);
  return polled.command;
}

/** The master target's side of a failover group: every machine comes up at a point 40 s old. */
function readyEvents(cmd: FailoverStartCommand): JobEvent[] {
  return cmd.machines.flatMap((m) => [
    { jobId: cmd.jobId, machineId: m.id, type: 'progress' as const, message: `materialising ${m.name}` },
    {
      jobId: cmd.jobId, machineId: m.id, type: 'machine-ready' as const,
      point: { time: new Date(clock.ms - 40_000).toISOString(), seq: 1234, kind: 'crash-consistent' as const },
      checks: [{ name: 'boot', passed: true, detail: 'login prompt seen' }],
      consoleLog: `${m.name} login: `,
    },
  ]);
}

it('runs enrollment, protection, health, a test failover and a scheduled drill end to end', async () => {
  // The admin token is on disk, readable only by its owner.
  assert.equal((await readFile(cp.adminTokenPath, 'utf8')).trim(), cp.adminToken);
  assert.equal((await stat(cp.adminTokenPath)).mode & 0o777, 0o600);

  const vault = await admin('POST', '/vaults', { name: 'flow' });
  const { key } = await admin('POST', `/vaults/${vault.id}/registration-keys`, { ttlSeconds: 3600 });
  const policy = await admin('POST', `/vaults/${vault.id}/policies`, { name: 'gold', rpoThresholdSeconds: 60, retentionSeconds: 86400 });

  // Enrollment: each component gets its own credential.
  const psEnrollment = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: 'http://mt1.example:7402' });
  const agents = [];
  for (const name of ['db1', 'app1']) {
    agents.push(await enroll(cp.url, {
      registrationKey: key, role: 'agent', name, siteName: 'primary', hostname: `${name}.example`, os: 'linux',
      disks: [{ name: 'disk0', sizeBytes: 1 << 30 }],
    }));
  }
  const ps = new ControlPlaneClient({ url: cp.url, credential: psEnrollment.credential });
  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });
  const [db, app] = agents.map((a) => ({ id: a.machineId!, diskId: a.disks![0]!.id }));
  const machines = await admin('GET', `/vaults/${vault.id}/machines`);
  assert.equal(machines.items.length, 2);

  // Protection: the command reaches both servers through their own queues.
  for (const m of [db, app]) await admin('PUT', `/vaults/${vault.id}/machines/${m.id}/protection`, { policyId: policy.id });
  for (const client of [ps, mt]) {
    const cmds = [await nextCommand(client), await nextCommand(client)];
    assert.deepEqual(cmds.map((c) => c.type), ['protection.enable', 'protection.enable']);
    const first = cmds[0] as Extract<SiteCommand, { type: 'protection.enable' }>;
    assert.equal(first.policy.rpoThresholdSeconds, 60);
    assert.equal(first.processServer.url, 'http://ps1.example:7401');
    assert.deepEqual(await client.pollCommands({ waitSeconds: 0 }), []);
  }
  const assignment = await new ControlPlaneClient({ url: cp.url, credential: agents[0]!.credential }).getAssignment();
  assert.equal(assignment.processServer?.url, 'http://ps1.example:7401');

  // Health: metrics over the threshold raise an RPO alert; back under it, it clears.
  const report = (lagSeconds: number) => mt.sendHeartbeat({
    softwareVersion: '0.1.0',
    disks: [db, app].map((m) => ({ machineId: m.id, diskId: m.diskId, state: 'CONTINUOUS' as const, lagSeconds, backlogBytes: 4096 })),
  });
  await report(5);
  await eventually('disk metrics', async () => {
    const m = await admin('GET', `/vaults/${vault.id}/machines/${db.id}`);
    return m.disks[0].lagSeconds === 5 && m.disks[0].state === 'CONTINUOUS';
  });
  await report(120);
  const alerts = await eventually('an rpo alert', async () => {
    const a = await admin('GET', `/vaults/${vault.id}/alerts?kind=rpo-exceeded`);
    return a.items.length === 2 && a.items;
  });
  assert.ok(alerts.every((a: { state: string }) => a.state === 'active'));
  await report(3);
  await eventually('the alert to clear', async () => (await admin('GET', `/vaults/${vault.id}/alerts`)).items.length === 0);

  // A plan with two ordered groups, and its test failover played by the master target.
  const plan = await admin('POST', `/vaults/${vault.id}/plans`, {
    name: 'erp', bootCheck: true,
    groups: [{ name: 'data', machineIds: [db.id] }, { name: 'apps', machineIds: [app.id], preActions: [{ name: 'wait-db', kind: 'script', script: 'sleep 1', timeoutSeconds: 30 }] }],
  });
  const job = await admin('POST', `/vaults/${vault.id}/jobs`, { kind: 'test-failover', planId: plan.id });
  assert.equal(job.state, 'running');
  for (const [group, machine] of [[0, db], [1, app]] as const) {
    const cmd = await nextCommand(mt);
    assert.equal(cmd.type, 'failover.start');
    const start = cmd as FailoverStartCommand;
    assert.deepEqual([start.groupIndex, start.mode, start.machines.map((m) => m.id)], [group, 'test', [machine.id]]);
    assert.equal(start.preActions.length, group === 1 ? 1 : 0);
    clock.ms += 30_000;
    await mt.sendJobEvent(readyEvents(start));
  }
  const done = await eventually('the test failover to succeed', async () => {
    const j = await admin('GET', `/vaults/${vault.id}/jobs/${job.id}`);
    return j.state !== 'running' && j;
  });
  assert.equal(done.state, 'succeeded');
  assert.equal(done.progressPercent, 100);
  assert.ok(done.events.some((e: { type: string }) => e.type === 'machine.progress'));

  // A drill scheduled an hour from now fires when the clock gets there.
  const drill = await admin('POST', `/vaults/${vault.id}/drills`, {
    planId: plan.id, intervalSeconds: 7 * 86400, firstRunAt: new Date(clock.ms + 3600_000).toISOString(),
  });
  await cp.runScheduledWork();
  assert.deepEqual(await mt.pollCommands({ waitSeconds: 0 }), [], 'not due yet');
  clock.ms += 3600_000;
  await cp.runScheduledWork();
  for (let group = 0; group < 2; group++) {
    const start = (await nextCommand(mt)) as FailoverStartCommand;
    assert.equal(start.type, 'failover.start');
    clock.ms += 20_000;
    await mt.sendJobEvent(readyEvents(start));
  }
  const cleanup = await nextCommand(mt);
  assert.equal(cleanup.type, 'test-failover.cleanup');
  if (cleanup.type !== 'test-failover.cleanup') return;
  await mt.sendJobEvent(cleanup.machineIds.map((id) => ({ jobId: cleanup.jobId, machineId: id, type: 'machine-cleaned' as const })));

  const [drillReport] = await eventually('a drill report', async () => {
    const r = await admin('GET', `/vaults/${vault.id}/drills/${drill.id}/reports`);
    return r.items.length > 0 && r.items;
  });
  assert.equal(drillReport.outcome, 'passed', JSON.stringify(drillReport));
  assert.equal(drillReport.cleanedUp, true);
  assert.equal(drillReport.checksPassed, 2);
  assert.equal(drillReport.timeToReadySeconds, 40);
  assert.deepEqual(drillReport.machines.map((m: { pointAgeSeconds: number }) => m.pointAgeSeconds), [20, 0]);
  assert.match(drillReport.machines[0].consoleLog, /db1 login/);
  const after = await admin('GET', `/vaults/${vault.id}/drills/${drill.id}`);
  assert.equal(after.phase, 'idle');
  assert.equal(after.nextRunAt, new Date(Date.parse(drill.nextRunAt) + 7 * 86400_000).toISOString());
});
