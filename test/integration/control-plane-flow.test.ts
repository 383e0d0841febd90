/**
 * The whole product on 127.0.0.1 with real processes: `tidemark up` (control plane, process
 * server, master target) and `tidemark agent --control-plane`. The agent enrolls with a
 * registration key, protection is enabled through the API, replication starts and the
 * machine's lag shows in the control plane; a plan's test failover runs through the master
 * target's queue and its exported image equals the source byte for byte; cleanup removes it;
 * a scheduled drill leaves its report; a silent agent raises the RPO alert; a restart of
 * `up` reuses every credential. The process server and master target speak mutual TLS with
 * the vault's CA: the agent and the test present certificates.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { freeQuad } from '../helpers/ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';
import { requestJson } from '../../core/http/client.ts';
import { identityOfEnrollment, loadIdentityDir } from '../../core/tls/tls-identity.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const DISK_BYTES = 32 * 1024 * 1024;
let dir: string;
let port: number;
const running: Running[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-cp-flow-'));
  port = await freeQuad();
});
after(async () => {
  for (const r of running) await r.stop();
  await rm(dir, { recursive: true, force: true });
});

function start(args: string[]): Running {
  const r = startTidemark(args, { TIDEMARK_LOG_LEVEL: 'warn', TIDEMARK_TOKEN: '', XDG_CONFIG_HOME: join(dir, 'config') });
  running.push(r);
  return r;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function writeRandom(path: string, offsets: number[], bytes: number): Promise<void> {
  const fh = await open(path, 'r+');
  for (const o of offsets) await fh.write(randomBytes(bytes), 0, bytes, o);
  await fh.sync();
  await fh.close();
}

it('enrolls an agent, replicates, fails over a plan as a job, cleans up and drills on a schedule', { timeout: 150_000 }, async () => {
  const t0 = Date.now();
  const data = join(dir, 'tm');
  let up = start(['up', '--data', data, '--port', String(port), '--schedule-interval', '2s']);
  await up.waitFor(/Stop with Ctrl-C/, 30_000);
  const cpUrl = `http://127.0.0.1:${port}`;
  const psUrl = `https://127.0.0.1:${port + 1}`;
  const mtUrl = `https://127.0.0.1:${port + 2}`;
  const key = up.stdout().match(/--key (\S+)/)![1]!;
  assert.equal((await stat(join(data, 'admin.token'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(data, 'process-server', 'enrollment.json'))).mode & 0o777, 0o600);
  const adminToken = (await readFile(join(data, 'admin.token'), 'utf8')).trim();
  const operator = (await loadIdentityDir(join(data, 'operator')))!;
  assert.equal((await stat(join(data, 'operator', 'key.pem'))).mode & 0o777, 0o600);
  const { vaultId } = JSON.parse(await readFile(join(data, 'up.json'), 'utf8')) as { vaultId: string };
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${cpUrl}/api/v1/vaults/${vaultId}${path}`, {
      method, headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const servers = (await api('GET', '/servers')).items as Array<{ role: string; url: string }>;
  assert.deepEqual(servers.map((s) => [s.role, s.url]).sort(), [['master-target', mtUrl], ['process-server', psUrl]]);

  // A source disk with data; the agent enrolls and waits for protection.
  const img = join(dir, 'web-01.img');
  await writeFile(img, Buffer.alloc(0));
  const fh = await open(img, 'r+');
  await fh.truncate(DISK_BYTES);
  await fh.close();
  await writeRandom(img, [0, 5 << 20, 17 << 20, DISK_BYTES - (1 << 20)], 1 << 20);
  const agentState = join(dir, 'agent');
  const agentArgs = ['agent', '--control-plane', cpUrl, '--key', key, '--state', agentState, '--machine', 'web-01', '--disk', img, '--mode', 'scan', '--interval', '1'];
  let agent = start(agentArgs);
  await agent.waitFor(/waiting for protection/, 30_000);
  const machine = await waitUntil('the machine to be listed', async () => {
    const items = (await api('GET', '/machines')).items as Array<{ id: string; name: string; disks: Array<{ id: string; sizeBytes: number }> }>;
    return items.find((m) => m.name === 'web-01');
  });
  assert.equal(machine.disks[0]!.sizeBytes, DISK_BYTES);
  const policy = await api('POST', '/policies', { name: 'fast', rpoThresholdSeconds: 8, retentionSeconds: 3600 });
  await api('PUT', `/machines/${machine.id}/protection`, { policyId: policy.id });
  await agent.waitFor(/protected: pushing to/, 30_000);
  console.log(`# protected after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // Replication: the process server's heartbeats put state, lag and the latest point on the disk.
  const disk = await waitUntil('replication to show in the control plane', async () => {
    const m = await api('GET', `/machines/${machine.id}`);
    const d = m.disks[0];
    return d.state === 'CONTINUOUS' && d.lagSeconds !== null && d.latestPoint ? d : undefined;
  }, 40_000);
  assert.ok(disk.lagSeconds < 60, `lag ${disk.lagSeconds}`);

  // The agent's own credential reaches its own streams only.
  const agentEnrollment = JSON.parse(await readFile(join(agentState, 'enrollment.json'), 'utf8'));
  const agentTls = (await identityOfEnrollment(join(agentState, 'enrollment.json'), agentEnrollment))!;
  assert.equal((await stat(join(agentState, 'enrollment-key.pem'))).mode & 0o777, 0o600);
  const asAgent = async (path: string, tls = agentTls, token?: string) => (await requestJson(psUrl, 'GET', path, undefined, { tls, token })).status;
  assert.equal(await asAgent('/v1/streams/web-01/disk0'), 200);
  assert.equal(await asAgent('/v1/streams/db-01/disk0'), 403);
  assert.equal(await asAgent('/v1/status'), 403);
  const noCertificate = { ...agentTls, cert: '', key: '' };
  assert.equal(await asAgent('/v1/streams/web-01/disk0', noCertificate), 401);
  assert.equal(await asAgent('/v1/streams/web-01/disk0', noCertificate, agentEnrollment.credential), 200, 'the bearer credential still works, confirmed by the control plane');
  assert.equal(await asAgent('/v1/streams/web-01/disk0', noCertificate, 'crd_aaaaaaaaaaaaaaaaaaaa.nope'), 401);
  assert.equal(await asAgent('/v1/status', operator), 200);

  // Change the source, then wait for two points after the change: the second one's scan began after it.
  await writeRandom(img, [3 << 20, 9 << 20], 256 * 1024);
  const changedAt = Date.now();
  const source = await readFile(img);
  const points = async () => (await requestJson<{ points: Array<{ id: string; seq: number; time: string; consistent: boolean }> }>(mtUrl, 'GET', '/v1/machines/web-01/disks/disk0/points', undefined, { tls: operator })).body.points;
  await waitUntil('two recovery points after the change', async () => {
    const after = (await points()).filter((p) => p.consistent && Date.parse(p.time) > changedAt);
    return after.length >= 2 || undefined;
  }, 30_000);

  // A plan's test failover runs as a job through the master target's queue.
  const plan = await api('POST', '/plans', { name: 'web', bootCheck: false, groups: [{ name: 'web', machineIds: [machine.id] }] });
  const tf0 = Date.now();
  const job = await api('POST', '/jobs', { kind: 'test-failover', planId: plan.id });
  const done = await waitUntil('the test failover to end', async () => {
    const j = await api('GET', `/jobs/${job.id}`);
    return j.state !== 'running' ? j : undefined;
  }, 30_000);
  console.log(`# test failover took ${((Date.now() - tf0) / 1000).toFixed(1)} s`);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  const step = done.steps[0];
  assert.equal(step.state, 'ready');
  const listed = (await points()).find((p) => p.seq === step.point.seq);
  assert.ok(listed, `point ${step.point.seq} is a point of the master target`);
  assert.equal(Date.parse(listed.time), Date.parse(step.point.time));
  assert.equal(step.point.kind, 'crash-consistent');
  assert.ok(Date.parse(step.point.time) > changedAt, 'the point used is after the change');
  // `up` serves views: the test failover opened a writable view at the point. Compare bytes,
  // not status: the view, read with nbdcopy, is the source.
  const uri = /(nbd:\/\/\S+)/.exec(step.checks[0].detail)?.[1];
  assert.ok(uri, `the check names the view: ${step.checks[0].detail}`);
  const copied = join(dir, 'view-copy.img');
  await run('nbdcopy', [uri, copied]);
  const viewed = await readFile(copied);
  assert.equal(viewed.length, source.length);
  assert.ok(viewed.equals(source), 'the test failover view equals the source byte for byte');

  // Cleanup removes the scratch images.
  const cleanup = await api('POST', '/jobs', { kind: 'cleanup', planId: plan.id, testFailoverJobId: job.id });
  const cleaned = await waitUntil('the cleanup to end', async () => {
    const j = await api('GET', `/jobs/${cleanup.id}`);
    return j.state !== 'running' ? j : undefined;
  }, 30_000);
  assert.equal(cleaned.state, 'succeeded', JSON.stringify(cleaned));
  const views = (await requestJson<{ views: unknown[] }>(mtUrl, 'GET', '/v1/views', undefined, { tls: operator })).body;
  assert.deepEqual(views.views, [], 'cleanup closed the views');

  // A drill due now is started by the scheduler pass (every 2 s here) and leaves its report.
  const d0 = Date.now();
  const drill = await api('POST', '/drills', { planId: plan.id, intervalSeconds: 3600 });
  const report = await waitUntil('a drill report', async () => (await api('GET', `/drills/${drill.id}/reports`)).items[0], 40_000);
  console.log(`# drill took ${((Date.now() - d0) / 1000).toFixed(1)} s`);
  assert.equal(report.outcome, 'passed', JSON.stringify(report));
  assert.equal(report.cleanedUp, true);
  assert.ok(report.checksPassed >= 1 && report.checksPassed === report.checksTotal);
  assert.match(report.machines[0].consoleLog, /writable view \S+ of disk0 opened at point/);

  // A silent agent: its lag grows past the policy's 8 s and the RPO alert is raised.
  await agent.stop();
  const alert = await waitUntil('an rpo alert', async () => (await api('GET', '/alerts?kind=rpo-exceeded')).items[0], 30_000);
  assert.equal(alert.machineId, machine.id);

  // A restart reuses the vault and every credential; the agent needs no key any more.
  const enrollmentBefore = await readFile(join(data, 'process-server', 'enrollment.json'), 'utf8');
  await up.stop();
  up = start(['up', '--data', data, '--port', String(port), '--schedule-interval', '2s']);
  await up.waitFor(/Stop with Ctrl-C/, 30_000);
  assert.equal(await readFile(join(data, 'process-server', 'enrollment.json'), 'utf8'), enrollmentBefore);
  assert.equal((await api('GET', '/servers')).items.length, 2);
  agent = start(agentArgs.filter((a, i) => a !== '--key' && agentArgs[i - 1] !== '--key'));
  await agent.waitFor(/protected: pushing to/, 30_000);
  await waitUntil('the alert to clear', async () => ((await api('GET', '/alerts?kind=rpo-exceeded')).items.length === 0) || undefined, 30_000);
  assert.equal((await api('GET', '/machines')).items.length, 1, 'the agent did not enroll again');
  console.log(`# whole flow ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
