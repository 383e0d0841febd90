/**
 * The console against real components, in Debian's chromium through playwright-core: a scan
 * agent replicates a disk through a process server to a master target serving views, both
 * linked to a control plane. The master target's own points reach the machine page's
 * timeline; a bookmark made from the console goes through the process server to the agent and
 * appears in that list; an older point picked in the timeline drives a test failover whose
 * view, read with nbdcopy, equals the source at that point (not the source now); a viewer can
 * do neither, and the server refuses it.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import { silentLogger } from '../../core/log.ts';
import { runAgent } from '../../edge-agent/agent.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { startMasterTargetSiteLink, type MasterTargetSiteLink } from '../../master-target/site-link/site-link.ts';
import { startProcessServer, type ProcessServer } from '../../process-server/server.ts';
import { freePort } from '../helpers/ports.ts';
import { axeViolations } from '../helpers/axe.ts';
import { CHROMIUM, CHROMIUM_ARGS, signIn } from '../helpers/console-browser.ts';
import { adminCall } from '../helpers/control-plane-admin.ts';

const run = promisify(execFile);
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`;
const DISK_BYTES = 8 * 1024 * 1024;
const TOKEN = randomBytes(16).toString('hex');

let dir: string;
let cp: LocalControlPlane;
let mt: MasterTarget;
let ps: ProcessServer;
let link: MasterTargetSiteLink;
let browser: Browser;
const agentStop = new AbortController();
let agent: Promise<void> | undefined;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'tidemark-console-recovery-'));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await link?.close();
  agentStop.abort();
  await agent?.catch(() => undefined);
  await ps?.close();
  await mt?.close();
  await cp?.close();
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('bookmarks from the console, picks an older point from the master target\'s list and test-fails over to exactly it', { skip, timeout: 120_000 }, async () => {
  const t0 = Date.now();
  // The source disk at point A.
  const source = join(dir, 'vm1-disk0.img');
  await writeFile(source, randomBytes(DISK_BYTES));
  const atA = await readFile(source);

  cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0, scheduleIntervalMs: 3600_000 });
  const admin = (method: string, path: string, body?: unknown): Promise<any> => adminCall(cp, method, path, body);
  const vaultId = (await admin('POST', '/vaults', { name: 'recovery' })).id;
  const v = `/vaults/${vaultId}`;
  const { key } = await admin('POST', `${v}/registration-keys`, { ttlSeconds: 3600 });
  const policy = await admin('POST', `${v}/policies`, { name: 'p', rpoThresholdSeconds: 3600, retentionSeconds: 3600 });

  mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, token: TOKEN, retentionSeconds: 3600, log: silentLogger, nbd: { host: '127.0.0.1', port: 0 } });
  const psPort = await freePort();
  const psEnrollment = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: `http://127.0.0.1:${psPort}` });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: mt.url });
  const agentEnrollment = await enroll(cp.url, { registrationKey: key, role: 'agent', name: 'vm1', siteName: 'primary', hostname: 'vm1', os: 'linux', disks: [{ name: 'disk0', sizeBytes: DISK_BYTES }] });
  const machineId = agentEnrollment.machineId!;
  const diskId = agentEnrollment.disks![0]!.id;
  ps = await startProcessServer({
    dataDir: join(dir, 'ps'), host: '127.0.0.1', port: psPort, masterTargetUrl: mt.url, token: TOKEN, log: silentLogger,
    controlPlane: { url: cp.url, credential: psEnrollment.credential, heartbeatIntervalMs: 1000 },
  });
  link = await startMasterTargetSiteLink({
    client: new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential }),
    masterTargetUrl: mt.url, token: TOKEN, dataDir: join(dir, 'mt'), log: silentLogger, pollWaitSeconds: 1, pointsIntervalMs: 300,
  });
  await admin('PUT', `${v}/machines/${machineId}/protection`, { policyId: policy.id, processServerId: psEnrollment.serverId, masterTargetId: mtEnrollment.serverId });
  // The machine's actions run through its one-machine plan; no boot check here (no bootable disk).
  await admin('POST', `${v}/plans`, { name: 'vm1 (machine)', bootCheck: false, groups: [{ name: 'vm1', machineIds: [machineId] }] });

  // One scan reaches the master target: point A. Then the source changes (not scanned until the bookmark).
  agent = runAgent({
    machine: 'vm1', disks: [source], stateDir: join(dir, 'agent'), processServerUrl: ps.url, token: TOKEN, intervalSeconds: 3600,
    hooks: { timeoutMs: 10_000 }, log: silentLogger, signal: agentStop.signal,
  });
  const pointA = await eventually('point A in the control plane', async () => {
    const r = await admin('GET', `${v}/machines/${machineId}/recovery-points`);
    return r.disks[0]?.newest;
  }, 30_000);
  const fh = await open(source, 'r+');
  for (const offset of [0, 3 << 20, DISK_BYTES - 65536]) await fh.write(randomBytes(65536), 0, 65536, offset);
  await fh.close();
  const now = await readFile(source);
  console.log(`# replicated and reported after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // The machine page shows the master target's point A.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  await signIn(page, cp.url, cp.adminToken);
  await page.goto(`${cp.url}/console/#/machines/${machineId}`);
  const radioA = page.locator(`#point-${diskId}-${pointA.seq}`);
  await radioA.waitFor({ timeout: 10_000 });

  // A bookmark from the console: confirmed with its name, followed to success, then in the point list.
  await page.getByRole('button', { name: 'Bookmark', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Bookmark name').fill('after the change');
  await dialog.getByRole('button', { name: 'Bookmark' }).click();
  const bookmarkPanel = page.locator('.job-panel', { hasText: 'bookmark job' });
  await bookmarkPanel.locator('.job-state').getByText('succeeded').waitFor({ timeout: 30_000 });
  assert.match((await bookmarkPanel.textContent())!, /Bookmark name: “after the change”/);
  const flag = page.locator('.points label', { hasText: 'bookmark “after the change”' });
  await flag.waitFor({ timeout: 10_000 });
  assert.equal(await flag.locator('.marker-key.bookmark').count(), 1, 'a bookmark is shown as a flag');
  assert.deepEqual(await axeViolations(page), [], 'the machine page with its timeline passes axe-core');
  const reported = await admin('GET', `${v}/machines/${machineId}/recovery-points`);
  const bookmark = reported.disks[0].marked.find((p: { name?: string }) => p.name === 'after the change');
  assert.ok(bookmark && bookmark.seq > pointA.seq, JSON.stringify(reported.disks[0]));
  console.log(`# bookmark in the list after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // Pick the older point A and run a test failover there: its view is the source at A, not now.
  await radioA.check();
  await page.getByRole('button', { name: 'Test failover', exact: true }).click();
  assert.match((await dialog.textContent())!, new RegExp(`seq ${pointA.seq}`));
  await dialog.getByRole('button', { name: 'Start test failover' }).click();
  const panel = page.locator('.job-panel', { hasText: 'test-failover job' });
  await panel.locator('.job-state').getByText('succeeded').waitFor({ timeout: 30_000 });
  assert.match((await panel.locator('td[data-label="Point used"]').textContent())!, new RegExp(`seq ${pointA.seq}`));
  await panel.getByText('Checks of vm1').click();
  const uri = /(nbd:\/\/\S+)/.exec((await panel.locator('details.checks').textContent())!)?.[1];
  assert.ok(uri, 'the check names the view');
  const copied = join(dir, 'view.img');
  await run('nbdcopy', [uri, copied]);
  const viewed = await readFile(copied);
  assert.ok(viewed.equals(atA), 'the view at the picked point equals the source at that point');
  assert.ok(!viewed.equals(now), 'and not the source now');

  // Cleanup from the console closes the views.
  await page.getByRole('button', { name: 'Clean up test failover' }).click();
  await dialog.getByRole('button', { name: 'Clean up' }).click();
  await page.locator('.job-panel', { hasText: 'cleanup job' }).locator('.job-state').getByText('succeeded').waitFor({ timeout: 30_000 });
  const views = await (await fetch(`${mt.url}/v1/views`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { views: unknown[] };
  assert.deepEqual(views.views, []);

  // A viewer sees the timeline but cannot bookmark or pick a point: the buttons say so, the server refuses.
  const viewerToken = (await admin('POST', '/operator-tokens', { name: 'auditor', role: 'viewer' })).token;
  const viewer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  viewer.on('pageerror', (err) => failures.push(err.message));
  await signIn(viewer, cp.url, viewerToken);
  await viewer.goto(`${cp.url}/console/#/machines/${machineId}`);
  await viewer.locator(`#point-${diskId}-${pointA.seq}`).waitFor();
  assert.ok(await viewer.getByRole('button', { name: 'Bookmark', exact: true }).isDisabled());
  assert.match((await viewer.locator('#action-bookmark-why').textContent())!, /needs the operator role/);
  const planId = (await admin('GET', `${v}/plans`)).items[0].id;
  const statuses = await viewer.evaluate(async ([vault, plan, point]) => {
    const token = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('tidemark.token');
    return Promise.all([{ kind: 'bookmark', planId: plan, name: 'sneaky' }, { kind: 'test-failover', planId: plan, point }].map((body) => fetch(`/api/v1/vaults/${vault}/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    }).then((r) => r.status)));
  }, [vaultId, planId, { id: String(pointA.seq), diskId }] as const);
  assert.deepEqual(statuses, [403, 403]);
  await viewer.close();
  await page.close();
  assert.deepEqual(failures, []);
  console.log(`# console recovery test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
