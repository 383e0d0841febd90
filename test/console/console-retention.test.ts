/**
 * The console when a master target shortened a disk's window for space, in Debian's chromium
 * through playwright-core: this test plays the master target through the site client and
 * reports points with `shortenedForSpaceTime`; the dashboard lists the `retention-shortened`
 * alert as a warning with its message, the machine page's timeline says older points were
 * deleted for space, and both pass axe-core.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import type { DiskPoints } from '../../core/control-plane/protocol.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { axeViolations } from '../helpers/axe.ts';
import { CHROMIUM, CHROMIUM_ARGS, signIn } from '../helpers/console-browser.ts';
import { adminCall } from '../helpers/control-plane-admin.ts';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`;

let dir: string;
let cp: LocalControlPlane;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'tidemark-console-retention-'));
  cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0, scheduleIntervalMs: 3600_000 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await cp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function admin(method: string, path: string, body?: unknown): Promise<any> {
  return adminCall(cp, method, path, body);
}

it('shows a retention-shortened alert as a warning and says on the timeline that older points were deleted for space', { skip, timeout: 60_000 }, async () => {
  const v = `/vaults/${(await admin('POST', '/vaults', { name: 'retention' })).id}`;
  const { key } = await admin('POST', `${v}/registration-keys`, { ttlSeconds: 3600 });
  const policy = await admin('POST', `${v}/policies`, { name: 'week', rpoThresholdSeconds: 60, retentionSeconds: 7 * 86400 });
  await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'dr', url: 'http://mt1.example:7402' });
  const db = await enroll(cp.url, { registrationKey: key, role: 'agent', name: 'db1', siteName: 'primary', hostname: 'db1', os: 'linux', disks: [{ name: 'disk0', sizeBytes: 1 << 30 }] });
  await admin('PUT', `${v}/machines/${db.machineId}/protection`, { policyId: policy.id });

  // Two days kept of the policy's seven: the master target deleted the rest for space an hour ago.
  const nowMs = Date.now();
  const point = (seq: number, ms: number) => ({ id: String(seq), seq, time: new Date(ms).toISOString(), kind: 'crash' as const });
  const oldest = point(10, nowMs - 2 * 86400_000);
  const newest = point(90, nowMs - 5_000);
  const disk: DiskPoints = {
    diskId: db.disks![0]!.id, appliedSeq: 90, oldest, newest, tiers: { fullSeconds: 3600, minuteTierSeconds: 86400 },
    recent: [newest, oldest], marked: [], shortenedForSpaceTime: new Date(nowMs - 3600_000).toISOString(),
  };
  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });
  await mt.sendRecoveryPoints({ machines: [{ machineId: db.machineId!, disks: [disk] }] });

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  await signIn(page, cp.url, cp.adminToken);
  const alert = page.locator('li.alert').filter({ hasText: 'retention-shortened' });
  await alert.waitFor();
  assert.match((await alert.textContent())!, /db1: disk disk0 keeps recovery points back to .* only, not the policy's 7 d: the master target deleted older journal to stay within its space limits/);
  assert.match((await alert.locator('.badge').getAttribute('class'))!, /\bwarn\b/, 'a warning, not a failure: replication goes on');
  assert.deepEqual(await axeViolations(page), [], 'the dashboard with the alert passes axe-core');

  await page.goto(`${cp.url}/console/#/machines/${db.machineId}`);
  const kept = page.locator('#kept-range');
  await kept.waitFor();
  assert.match((await kept.textContent())!, /Older points were deleted to stay within the master target's space limits, last /);
  assert.deepEqual(await axeViolations(page), [], 'the machine page passes axe-core');
  assert.deepEqual(failures, []);
  await page.close();
});
