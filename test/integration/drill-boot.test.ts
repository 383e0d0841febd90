/**
 * Test failover and a scheduled drill with the boot check, through the master target's site
 * link: a scan agent replicates the bootable test disk (a marker file on ext4) to a master
 * target serving views over NBD; a plan with `bootCheck` and its console pattern (what the
 * replica must print to count as booted) runs as a job through an in-process
 * control plane; the site link opens a writable view and boots the replica under QEMU from it,
 * and the job's evidence is the replica's console showing the marker from the source disk.
 * Cleanup leaves no QEMU process and no open view. Skips with the fixture's reason when the
 * test system's kernel cannot be had here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import { silentLogger } from '../../core/log.ts';
import { runAgent } from '../../edge-agent/agent.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { ImageExportRecovery } from '../../master-target/site-link/image-export-recovery.ts';
import { MasterTargetApi } from '../../master-target/site-link/master-target-api.ts';
import { startMasterTargetSiteLink, type MasterTargetSiteLink } from '../../master-target/site-link/site-link.ts';
import { ViewBootRecovery } from '../../master-target/site-link/view-boot-recovery.ts';
import { startProcessServer, type ProcessServer } from '../../process-server/server.ts';
import { buildMarkerDisk, prepareBootKernel } from '../fixtures/bootable/build.ts';
import { adminCall } from '../helpers/control-plane-admin.ts';

const kernel = await prepareBootKernel();
const skip = kernel.ok ? false : kernel.skipReason;

/** Retries `probe` until it returns a truthy value. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Processes whose command line mentions `dir` (the replica's QEMU names its console log under it). */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '');
    if (cmd.includes(dir) && cmd.includes('qemu')) found.push(`${pid}: ${cmd.replaceAll('\0', ' ').slice(0, 200)}`);
  }
  return found;
}

describe('drills with the boot check through the master target site link', { skip, timeout: 90_000 }, () => {
  const marker = `drill-marker-${randomBytes(6).toString('hex')}`;
  let dir: string;
  let mtDir: string;
  let mt: MasterTarget;
  let ps: ProcessServer;
  let cp: LocalControlPlane;
  let link: MasterTargetSiteLink;
  const agentStop = new AbortController();
  let agent: Promise<void>;
  let vaultId: string;
  let planId: string;
  let machineId: string;

  const admin = (method: string, path: string, body?: unknown): Promise<any> => adminCall(cp, method, path, body);
  const openViews = async () => ((await (await fetch(`${mt.url}/v1/views`)).json()) as { views: unknown[] }).views;

  before(async () => {
    const t0 = Date.now();
    dir = await mkdtemp(join(tmpdir(), 'tidemark-drill-boot-'));
    mtDir = join(dir, 'mt');
    const source = join(dir, 'vm1-disk0.img');
    await buildMarkerDisk(source, { source: marker });
    mt = await startMasterTarget({ dataDir: mtDir, host: '127.0.0.1', port: 0, retentionSeconds: 3600, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 } });
    ps = await startProcessServer({ dataDir: join(dir, 'ps'), host: '127.0.0.1', port: 0, masterTargetUrl: mt.url, log: silentLogger });

    // One scan of the source disk reaches the master target as a consistent point.
    let passes = 0;
    agent = runAgent({
      machine: 'vm1', disks: [source], stateDir: join(dir, 'agent'), processServerUrl: ps.url, intervalSeconds: 3600,
      hooks: { timeoutMs: 10_000 }, log: silentLogger, signal: agentStop.signal, onEvent: (e) => { if (e.type === 'pass') passes++; },
    });
    await eventually('the first scan', async () => passes > 0, 30_000);
    await eventually('a consistent point at the master target', async () => {
      const res = await fetch(`${mt.url}/v1/machines/vm1/disks/disk0/points`);
      return res.ok && ((await res.json()) as { points: Array<{ consistent: boolean }> }).points.some((p) => p.consistent);
    }, 30_000);
    console.log(`# replicated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0, scheduleIntervalMs: 3600_000 });
    vaultId = (await admin('POST', '/vaults', { name: 'drills' })).id;
    const { key } = await admin('POST', `/vaults/${vaultId}/registration-keys`, { ttlSeconds: 3600 });
    const policy = await admin('POST', `/vaults/${vaultId}/policies`, { name: 'p', rpoThresholdSeconds: 3600, retentionSeconds: 3600 });
    const psEnrollment = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: ps.url });
    const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: mt.url });
    const sizeBytes = (await stat(source)).size;
    const agentEnrollment = await enroll(cp.url, { registrationKey: key, role: 'agent', name: 'vm1', siteName: 'primary', hostname: 'vm1', os: 'linux', disks: [{ name: 'disk0', sizeBytes }] });
    machineId = agentEnrollment.machineId!;
    await admin('PUT', `/vaults/${vaultId}/machines/${machineId}/protection`, { policyId: policy.id, processServerId: psEnrollment.serverId, masterTargetId: mtEnrollment.serverId });
    // The plan says what the console must print; the link below has no pattern of its own.
    planId = (await admin('POST', `/vaults/${vaultId}/plans`, { name: 'vm1', bootCheck: true, bootConsolePattern: 'TIDEMARK-DONE', groups: [{ name: 'all', machineIds: [machineId] }] })).id;

    const k = kernel.ok ? kernel.kernel : undefined;
    link = await startMasterTargetSiteLink({
      client: new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential }),
      masterTargetUrl: mt.url, dataDir: mtDir, log: silentLogger, pollWaitSeconds: 1,
      boot: {
        replica: { kernelPath: k?.kernelPath, initrdPath: k?.initrdPath, append: 'console=ttyS0 quiet panic=-1', memoryMiB: 256, maxRunSeconds: 60 },
        timeoutSeconds: 40,
      },
    });
  });

  after(async () => {
    await link?.close();
    agentStop.abort();
    await agent?.catch(() => undefined);
    await ps?.close();
    await mt?.close();
    await cp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('boots the replica from a view in a test failover, with the source marker on its console; cleanup ends it', async () => {
    const t0 = Date.now();
    const job = await admin('POST', `/vaults/${vaultId}/jobs`, { kind: 'test-failover', planId });
    const done = await eventually('the test failover to end', async () => {
      const j = await admin('GET', `/vaults/${vaultId}/jobs/${job.id}`);
      return j.state !== 'running' && j;
    }, 50_000, 250);
    console.log(`# test failover with boot took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    const step = done.steps[0];
    assert.equal(step.state, 'ready');
    const names = step.checks.map((c: { name: string }) => c.name);
    assert.deepEqual(names, ['view disk0', 'boot']);
    assert.ok(step.checks.every((c: { passed: boolean }) => c.passed));
    assert.match(step.checks[0].detail, new RegExp(`opened at point ${step.point.seq} `));
    // The plan's pattern, not the link's default (any printed line, which the kernel prints first).
    assert.match(step.checks[1].detail, /^booted: console shows "TIDEMARK-DONE"/);
    assert.equal(done.bootConsolePattern, 'TIDEMARK-DONE');
    assert.ok(done.events.some((e: { message: string }) => /waiting up to 40 s for "TIDEMARK-DONE" on the console/.test(e.message)), 'the wait names the plan\'s pattern');
    assert.match(step.consoleLog, new RegExp(`TIDEMARK-MARKER source ${marker}`));
    assert.equal((await openViews()).length, 1, 'the view stays open until cleanup');

    const cleanup = await admin('POST', `/vaults/${vaultId}/jobs`, { kind: 'cleanup', planId, testFailoverJobId: job.id });
    const cleaned = await eventually('the cleanup to end', async () => {
      const j = await admin('GET', `/vaults/${vaultId}/jobs/${cleanup.id}`);
      return j.state !== 'running' && j;
    }, 30_000, 250);
    assert.equal(cleaned.state, 'succeeded', JSON.stringify(cleaned));
    assert.deepEqual(await openViews(), []);
    assert.deepEqual(await processesUnder(mtDir), []);
    await assert.rejects(stat(join(mtDir, 'test-failovers', job.id, machineId)), { code: 'ENOENT' });
  });

  it('runs a scheduled drill that boots the replica and reports passed with the console evidence', async () => {
    const t0 = Date.now();
    const drill = await admin('POST', `/vaults/${vaultId}/drills`, { planId, intervalSeconds: 86400 });
    const report = await eventually('a drill report', async () => {
      await cp.runScheduledWork();
      return (await admin('GET', `/vaults/${vaultId}/drills/${drill.id}/reports`)).items[0];
    }, 50_000, 500);
    console.log(`# drill with boot took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(report.outcome, 'passed', JSON.stringify(report));
    assert.equal(report.cleanedUp, true);
    assert.equal(report.checksTotal, 2);
    assert.equal(report.checksPassed, 2);
    assert.equal(report.bootConsolePattern, 'TIDEMARK-DONE', 'the report shows the pattern the boot check used');
    assert.match(report.machines[0].checks[1].detail, /^booted: console shows "TIDEMARK-DONE"/);
    assert.ok(report.machines[0].pointAgeSeconds >= 0);
    assert.match(report.machines[0].consoleLog, new RegExp(`TIDEMARK-MARKER source ${marker}`));
    assert.deepEqual(await openViews(), []);
    assert.deepEqual(await processesUnder(mtDir), []);
  });

  it('fails a boot check whose console pattern never shows, with the console tail, and ends the replica and views at once', async () => {
    const t0 = Date.now();
    const api = new MasterTargetApi(mt.url);
    const k = kernel.ok ? kernel.kernel : undefined;
    const recovery = new ViewBootRecovery({
      api, fallback: new ImageExportRecovery(api), log: silentLogger,
      boot: { replica: { kernelPath: k?.kernelPath, initrdPath: k?.initrdPath, append: 'console=ttyS0 quiet panic=-1', memoryMiB: 256, maxRunSeconds: 60 }, consolePattern: 'NEVER-PRINTED', timeoutSeconds: 4 },
    });
    const progress: string[] = [];
    await assert.rejects(recovery.bringUp({
      jobId: 'job_boot_fails', mode: 'test', machine: { id: machineId, name: 'vm1', hostname: 'vm1', disks: [{ id: 'dsk_x', name: 'disk0', sizeBytes: 0 }] },
      atTime: new Date(), workDir: join(dir, 'work', 'boot-fails'), bootCheck: true, signal: new AbortController().signal,
      progress: async (m) => void progress.push(m),
    }), /boot check failed: no "NEVER-PRINTED" on the console within 4 s; console tail: /);
    console.log(`# failed boot check took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.match(progress.join('\n'), /waiting up to 4 s for "NEVER-PRINTED" on the console/);
    assert.deepEqual(await openViews(), []);
    assert.deepEqual(await processesUnder(mtDir), []);
    await recovery.tearDown(join(dir, 'work', 'boot-fails'));
  });
});
