/**
 * The site links' pieces in one process: the control plane's agent-credential check, the
 * master target's failover jobs under redelivery, and the process server's assignments.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import type { FailoverStartCommand, JobEvent, ProtectionEnableCommand } from '../../core/control-plane/protocol.ts';
import { silentLogger } from '../../core/log.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { FailoverJobs } from '../../master-target/site-link/failover-jobs.ts';
import type { BringUpRequest, MachineRecovery } from '../../master-target/site-link/recovery.ts';
import { Assignments } from '../../core/control-plane/assignments.ts';
import { agentAuthenticator } from '../../process-server/site-link/agent-auth.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-site-links-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('agent credentials', () => {
  let cp: LocalControlPlane;
  before(async () => {
    cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0 });
  });
  after(() => cp.close());

  it('are confirmed only to the process server their machine is assigned to', async () => {
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${cp.url}/api/v1${path}`, {
        method, headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
      });
      assert.ok(res.ok, `${method} ${path}: ${res.status}`);
      return res.json() as Promise<any>;
    };
    const vault = await admin('POST', '/vaults', { name: 'v' });
    const { key } = await admin('POST', `/vaults/${vault.id}/registration-keys`, {});
    const policy = await admin('POST', `/vaults/${vault.id}/policies`, { name: 'p', rpoThresholdSeconds: 60, retentionSeconds: 3600 });
    const ps1 = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'a', url: 'http://ps1.example:1' });
    const ps2 = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps2', siteName: 'a', url: 'http://ps2.example:1' });
    const mt = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt', siteName: 'b', url: 'http://mt.example:1' });
    const agent = await enroll(cp.url, { registrationKey: key, role: 'agent', name: 'web-01', siteName: 'a', disks: [{ name: 'disk0', sizeBytes: 4096 }] });
    const client = (credential: string) => new ControlPlaneClient({ url: cp.url, credential });

    assert.deepEqual(await client(ps1.credential).verifyAgent(agent.credential), { valid: false, reason: 'the machine is not assigned to this process server' });
    await admin('PUT', `/vaults/${vault.id}/machines/${agent.machineId}/protection`, { policyId: policy.id, processServerId: ps1.serverId, masterTargetId: mt.serverId });
    assert.deepEqual(await client(ps1.credential).verifyAgent(agent.credential), {
      valid: true, machineId: agent.machineId, machineName: 'web-01', disks: [{ id: agent.disks![0]!.id, name: 'disk0' }],
    });
    assert.equal((await client(ps2.credential).verifyAgent(agent.credential)).valid, false);
    assert.equal((await client(ps1.credential).verifyAgent(agent.credential.slice(0, -2) + 'xx')).valid, false);
    assert.equal((await client(ps1.credential).verifyAgent('not a credential')).valid, false);
    assert.equal((await client(ps1.credential).verifyAgent(ps2.credential)).valid, false);
    await assert.rejects(client(mt.credential).verifyAgent(agent.credential), { status: 403 });
    await assert.rejects(client(agent.credential).verifyAgent(agent.credential), { status: 403 });

    // The process server's cache: one question per credential while the answer is fresh.
    let asked = 0;
    const counting = { verifyAgent: async (c: string) => { asked++; return client(ps1.credential).verifyAgent(c); } } as unknown as ControlPlaneClient;
    const auth = agentAuthenticator(counting);
    const [a, b] = await Promise.all([auth(agent.credential), auth(agent.credential)]);
    assert.deepEqual(a, { machineId: agent.machineId, machineName: 'web-01' });
    assert.deepEqual(b, a);
    assert.deepEqual(await auth(agent.credential), a);
    assert.equal(asked, 1);
  });
});

describe('failover jobs', () => {
  const machine = { id: 'mch_aaaaaaaaaaaaaaaaaaaa', name: 'web-01', hostname: 'web-01', disks: [{ id: 'dsk_aaaaaaaaaaaaaaaaaaaa', name: 'disk0', sizeBytes: 4096 }] };
  const command = (jobId: string, extra: Partial<FailoverStartCommand> = {}): FailoverStartCommand => ({
    v: 1, id: `cmd_${jobId}`, issuedAt: new Date().toISOString(), type: 'failover.start', jobId, mode: 'test', groupIndex: 0,
    point: 'latest', bootCheck: false, machines: [machine], preActions: [], postActions: [], ...extra,
  });

  function setup(bringUp: (req: BringUpRequest) => Promise<void> = async () => undefined) {
    const events: JobEvent[] = [];
    let calls = 0;
    const torn: string[] = [];
    const recovery: MachineRecovery = {
      async bringUp(req) {
        calls++;
        await bringUp(req);
        return { point: { time: '2030-01-01T00:00:00.000Z', seq: 7, kind: 'crash-consistent' }, checks: [{ name: 'export disk0', passed: true }], evidence: 'ok' };
      },
      async tearDown(workDir) {
        torn.push(workDir);
        await rm(workDir, { recursive: true, force: true });
      },
    };
    const client = { sendJobEvent: async (e: JobEvent | JobEvent[]) => void events.push(...(Array.isArray(e) ? e : [e])) } as unknown as ControlPlaneClient;
    const jobs = new FailoverJobs({ client, recovery, dataDir: join(dir, `mt-${Math.random().toString(36).slice(2)}`), log: silentLogger, signal: new AbortController().signal });
    return { jobs, events, torn, calls: () => calls, endings: () => events.filter((e) => e.type !== 'progress') };
  }

  it('brings a machine up once however often the command arrives, and re-reports the outcome', async () => {
    const t = setup(() => new Promise((r) => setTimeout(r, 50)));
    await Promise.all([t.jobs.start(command('job_a')), t.jobs.start(command('job_a'))]);
    await t.jobs.start(command('job_a'));
    assert.equal(t.calls(), 1);
    assert.deepEqual(t.endings().map((e) => [e.type, e.jobId, e.point?.seq]), [['machine-ready', 'job_a', 7], ['machine-ready', 'job_a', 7]]);
  });

  it('cleans up idempotently and does not bring a cleaned machine up again', async () => {
    const t = setup();
    await t.jobs.start(command('job_b'));
    const cleanup = { v: 1 as const, id: 'cmd_c', issuedAt: '', type: 'test-failover.cleanup' as const, jobId: 'job_c', testFailoverJobId: 'job_b', machineIds: [machine.id] };
    await t.jobs.cleanup(cleanup);
    await t.jobs.cleanup(cleanup);
    await assert.rejects(stat(t.jobs.workDir('test', 'job_b', machine.id)), { code: 'ENOENT' });
    await t.jobs.start(command('job_b'));
    assert.equal(t.calls(), 1);
    assert.deepEqual(t.endings().map((e) => e.type), ['machine-ready', 'machine-cleaned', 'machine-cleaned']);
  });

  it('reports failures: a failing pre-action, a machine that cannot come up, an id that is not one', async () => {
    const t = setup(async () => { throw new Error('no recovery point at or before now'); });
    await t.jobs.start(command('job_d', { preActions: [{ name: 'stop-app', kind: 'script', script: 'echo nope >&2; exit 3', timeoutSeconds: 5 }] }));
    await t.jobs.start(command('job_e'));
    assert.equal(t.calls(), 1);
    const [pre, up] = t.endings();
    assert.equal(pre!.type, 'machine-failed');
    assert.match(pre!.error!, /pre-action failed: action stop-app failed \(exit 3\): nope/);
    assert.equal(up!.type, 'machine-failed');
    assert.match(up!.error!, /web-01: no recovery point/);
    await assert.rejects(t.jobs.start(command('../etc')), /not a control plane id/);
  });
});

describe('process server assignments', () => {
  it('apply each enable once, ignore older ones and survive a reopen', async () => {
    const d = join(dir, 'ps');
    const enable = (id: string, issuedAt: string, rpo: number): ProtectionEnableCommand => ({
      v: 1, id, issuedAt, type: 'protection.enable',
      machine: { id: 'mch_aaaaaaaaaaaaaaaaaaaa', name: 'web-01', hostname: 'web-01', disks: [{ id: 'dsk_aaaaaaaaaaaaaaaaaaaa', name: 'disk0', sizeBytes: 1 }] },
      policy: { id: 'pol_aaaaaaaaaaaaaaaaaaaa', rpoThresholdSeconds: rpo, retentionSeconds: 60, appConsistentIntervalSeconds: null, bandwidthLimitBytesPerSecond: null },
      processServer: { id: 'srv_a', url: 'http://ps' }, masterTarget: { id: 'srv_b', url: 'http://mt' },
    });
    const a = await Assignments.open(d);
    assert.equal(await a.enable(enable('cmd_2', '2030-01-01T00:00:02Z', 30)), true);
    assert.equal(await a.enable(enable('cmd_2', '2030-01-01T00:00:02Z', 30)), false);
    assert.equal(await a.enable(enable('cmd_1', '2030-01-01T00:00:01Z', 10)), false);
    const again = await Assignments.open(d);
    assert.equal(again.byMachineName('web-01')?.policy.rpoThresholdSeconds, 30);
    assert.equal(await again.disable('mch_aaaaaaaaaaaaaaaaaaaa'), true);
    assert.equal(await again.disable('mch_aaaaaaaaaaaaaaaaaaaa'), false);
    assert.equal((await Assignments.open(d)).list().length, 0);
  });
});
