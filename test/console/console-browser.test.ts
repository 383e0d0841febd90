/**
 * The console in a real browser (Debian's chromium through playwright-core) against a control
 * plane started in this process. This test plays the sites through the site client: a process
 * server, a master target and two agents enroll with the key the page made; the master target
 * replays an hour of heartbeats (on the control plane's clock, which starts an hour back and
 * catches up with the real one) and answers the failover commands.
 *
 * Screenshots go to $TIDEMARK_SCREENSHOTS_DIR when set (docs/screenshots for the docs).
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ControlPlaneClient, enroll } from '../../core/control-plane/client.ts';
import type { EnrollResponse, RecoveryPointRef, SiteCommand } from '../../core/control-plane/protocol.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { axeViolations } from '../helpers/axe.ts';
import { CHROMIUM, CHROMIUM_ARGS, signIn } from '../helpers/console-browser.ts';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`;

/** The control plane's clock runs `offsetMs` behind the real one while history is replayed. */
let offsetMs = 0;
let dataDir: string;
let cp: LocalControlPlane;
let browser: Browser;
const shots = process.env.TIDEMARK_SCREENSHOTS_DIR;
const stop = new AbortController();

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'tidemark-console-'));
  cp = await startControlPlane({ dataDir, port: 0, host: '127.0.0.1', scheduleIntervalMs: 3600_000, now: () => Date.now() + offsetMs });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  if (shots) await mkdir(shots, { recursive: true });
});
after(async () => {
  stop.abort();
  await browser?.close();
  await cp?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Accessibility findings of every page checked, by page. */
const a11y: string[] = [];

/** The screenshots the docs show (docs/console.md, README). */
const SHOWN = new Set(['enrollment-1280', 'machine-1280', 'dashboard-1280', 'plan-1280', 'jobs-1280', 'dashboard-390', 'machine-390']);

/** Checks the page in view with axe-core (and takes its screenshot when the docs show it). */
async function check(page: Page, name: string): Promise<void> {
  for (const v of await axeViolations(page)) a11y.push(`${name}: ${v}`);
  // Against the viewport's width, not innerWidth: a mobile viewport widens to fit what overflows.
  const width = page.viewportSize()!.width;
  const wide = await page.evaluate(`[...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > ${width} + 0.5 && !e.closest('dialog:not([open])'))
    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ends at ' + Math.round(e.getBoundingClientRect().right) + ' px').slice(0, 5)`) as string[];
  for (const e of wide) a11y.push(`${name}: wider than ${width} px: ${e}`);
  if (SHOWN.has(name)) await shot(page, name);
}

async function shot(page: Page, name: string): Promise<void> {
  if (!shots) return;
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function adminGet(path: string): Promise<any> {
  const res = await fetch(`${cp.url}/api/v1${path}`, { headers: { authorization: `Bearer ${cp.adminToken}` } });
  assert.equal(res.status, 200);
  return res.json();
}

/** Follows a link of the main navigation. */
function nav(page: Page, name: string): Promise<void> {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();
}

/** The master target: answers failover and cleanup commands until the test ends. */
function playMasterTarget(mt: ControlPlaneClient, latest: Map<string, RecoveryPointRef>, names: Map<string, string>, bySeq: Map<number, RecoveryPointRef>): Promise<void> {
  return (async () => {
    while (!stop.signal.aborted) {
      let polled;
      try {
        polled = await mt.pollCommands({ waitSeconds: 1, signal: stop.signal });
      } catch {
        continue;
      }
      for (const { receipt, command } of polled) {
        await answer(mt, command, latest, names, bySeq);
        await mt.ackCommand(receipt);
      }
    }
  })();
}

async function answer(mt: ControlPlaneClient, command: SiteCommand, latest: Map<string, RecoveryPointRef>, names: Map<string, string>, bySeq: Map<number, RecoveryPointRef>) {
  if (command.type === 'failover.start') {
    const p = command.point;
    for (const m of command.machines) {
      const point = typeof p === 'object' && 'id' in p ? bySeq.get(Number(p.id)) : latest.get(m.id);
      await mt.sendJobEvent({ jobId: command.jobId, machineId: m.id, type: 'progress', message: `materialising ${m.disks.map((d) => d.name).join(', ')}` });
      await new Promise((r) => setTimeout(r, 300));
      await mt.sendJobEvent({
        jobId: command.jobId, machineId: m.id, type: 'machine-ready', point,
        checks: [{ name: 'boot', passed: true, detail: 'login prompt seen' }],
        consoleLog: `[    0.000000] Linux version 6.1.0-amd64\n[    1.912345] EXT4-fs (vda1): mounted filesystem\n\nDebian GNU/Linux 12 ${names.get(m.id)} ttyS0\n\n${names.get(m.id)} login: `,
      });
    }
  } else if (command.type === 'test-failover.cleanup') {
    await mt.sendJobEvent(command.machineIds.map((id) => ({ jobId: command.jobId, machineId: id, type: 'machine-cleaned' as const })));
  }
}

it('enrolls, shows a machine reaching CONTINUOUS, runs a test failover at a picked point, and keeps a viewer out', { skip, timeout: 120_000 }, async () => {
  const started = Date.now();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failures: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  page.on('requestfailed', (req) => { if (!req.url().startsWith(cp.url)) failures.push(`outside request ${req.url()}`); });
  page.on('request', (req) => { if (!req.url().startsWith(cp.url) && !req.url().startsWith('data:')) failures.push(`outside request ${req.url()}`); });

  // Sign in as admin; make the vault, a policy and a registration key; see the install command.
  await page.goto(cp.url);
  await page.getByLabel('Operator token').waitFor();
  for (const v of await axeViolations(page)) a11y.push(`sign-in: ${v}`);
  await signIn(page, cp.url, cp.adminToken);
  await nav(page, 'Enrollment');
  await page.getByLabel('Vault name').fill('main');
  await page.getByRole('button', { name: 'Create vault' }).click();
  await page.getByRole('button', { name: 'Create registration key' }).click();
  const command = await page.locator('#install-command').textContent();
  const key = (await page.locator('#new-key').textContent())!;
  assert.match(key, /^rgk_/);
  assert.equal(command, `tidemark agent --control-plane ${cp.url} --key ${key} --state /var/lib/tidemark-agent --machine db1 --disk /dev/sdb --mode scan --interval 60`);
  await page.getByLabel('Machine name').fill('web1');
  assert.match((await page.locator('#install-command').textContent())!, /--machine web1 /);
  await page.getByLabel('Machine name').fill('db1');
  await page.getByRole('button', { name: 'Create policy' }).click();
  await page.locator('#policies-table').getByText('gold').waitFor();
  await check(page, 'enrollment-1280');

  console.log(`enrollment page done after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The sites enroll with that key.
  const vaultId = (await adminGet(`/vaults`)).items[0].id;
  await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'http://ps1.example:7401' });
  const mtEnrollment = await enroll(cp.url, { registrationKey: key, role: 'master-target', name: 'mt1', siteName: 'recovery', url: 'http://mt1.example:7402' });
  const agents: EnrollResponse[] = [];
  for (const [name, disks] of [['db1', ['disk0', 'disk1']], ['app1', ['disk0']]] as const) {
    agents.push(await enroll(cp.url, {
      registrationKey: key, role: 'agent', name, siteName: 'primary', hostname: `${name}.example.net`, os: 'debian 12',
      disks: disks.map((d, i) => ({ name: d, sizeBytes: (i + 1) * 16 * 2 ** 30 })),
    }));
  }
  const [db, app] = agents.map((a) => ({ id: a.machineId!, disks: a.disks!.map((d) => d.id) }));
  const names = new Map([[db.id, 'db1'], [app.id, 'app1']]);
  const mt = new ControlPlaneClient({ url: cp.url, credential: mtEnrollment.credential });

  // Protect db1 from its page; app1 through the API.
  await nav(page, 'Dashboard');
  await page.getByRole('link', { name: 'db1' }).click();
  await page.getByRole('button', { name: 'Enable protection' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Enable protection' }).click();
  await page.locator('dl.facts').getByText('Master target').waitFor();
  const policyId = (await adminGet(`/vaults/${vaultId}/policies`)).items[0].id;
  const protect = await fetch(`${cp.url}/api/v1/vaults/${vaultId}/machines/${app.id}/protection`, {
    method: 'PUT', headers: { authorization: `Bearer ${cp.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ policyId }),
  });
  assert.equal(protect.status, 200);

  // An hour of heartbeats: initial sync, then continuous with one RPO excursion; a point each time.
  const latest = new Map<string, RecoveryPointRef>();
  const bySeq = new Map<number, RecoveryPointRef>();
  const master = playMasterTarget(mt, latest, names, bySeq);
  const steps = 40;
  let seq = 1000;
  for (let i = 0; i < steps; i++) {
    offsetMs = -(steps - 1 - i) * 90_000;
    const nowMs = Date.now() + offsetMs;
    const syncing = i < 4;
    const lag = syncing ? 0 : i >= 15 && i < 18 ? 70 + (i - 15) * 8 : 4 + 3 * Math.abs(Math.sin(i / 5));
    seq += 300 + Math.round(240 * (1 + Math.sin(i / 4)));
    const point: RecoveryPointRef = { time: new Date(nowMs - lag * 1000).toISOString(), seq, kind: i % 5 === 0 ? 'app-consistent' : 'crash-consistent' };
    const disks = [db, app].flatMap((m) => m.disks.map((diskId) => ({
      machineId: m.id, diskId, state: syncing ? 'INITIAL_SYNC' as const : 'CONTINUOUS' as const,
      lagSeconds: Math.round(lag * 10) / 10, backlogBytes: syncing ? (4 - i) * 64 * 2 ** 20 : Math.round(lag * 40_000),
      ...(syncing ? {} : { latestPoint: point }),
    })));
    if (!syncing) {
      for (const m of [db, app]) latest.set(m.id, point);
      bySeq.set(seq, point);
    }
    await mt.sendHeartbeat({ softwareVersion: '0.1.0', disks });
  }
  offsetMs = 0;
  // The master target reports the points it keeps: the newest and the app-consistent ones.
  const listedOf = (p: RecoveryPointRef) => ({ id: String(p.seq), seq: p.seq!, time: p.time, kind: p.kind === 'app-consistent' ? 'app' as const : 'crash' as const });
  const kept = [...bySeq.values()].map(listedOf).reverse();
  await mt.sendRecoveryPoints({ machines: [db, app].map((m) => ({
    machineId: m.id,
    disks: m.disks.map((diskId) => ({
      diskId, appliedSeq: kept[0]!.seq, oldest: kept.at(-1)!, newest: kept[0]!, tiers: { fullSeconds: 3600, minuteTierSeconds: 86400 },
      recent: kept.slice(0, 50),
      marked: [...kept.filter((p) => p.kind === 'app'), { ...kept[10]!, id: String(kept[10]!.seq + 1), seq: kept[10]!.seq + 1, kind: 'bookmark' as const, name: 'before upgrade' }]
        .sort((a, b) => b.seq - a.seq),
    })),
  })) });
  console.log(`heartbeats replayed after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // The machine reaches CONTINUOUS on its page; the master target's points are offered, and an older one picked.
  await page.locator('#disks-table').getByText('CONTINUOUS').first().waitFor({ timeout: 10_000 });
  const newest = latest.get(db.id)!;
  const older = kept[3]!;
  await page.locator(`label[for="point-${db.disks[0]}-${newest.seq}"]`).waitFor();
  assert.ok(await page.getByRole('radio', { name: /^Latest/ }).isChecked(), 'latest is the default');
  const radio = page.locator(`#point-${db.disks[0]}-${older.seq}`);
  await radio.check();
  assert.ok(await radio.isChecked());
  assert.ok(await page.locator('.points .app-consistent').count() > 0, 'app-consistent points are shown differently');
  assert.equal(await page.locator('.points label', { hasText: 'bookmark “before upgrade”' }).locator('.marker-key.bookmark').count(), 2, 'a bookmark (one per disk) is a flag');
  assert.match((await page.locator('#kept-range').textContent())!, /every point of the last 1 h/);

  // Test failover: confirmed, then followed until it succeeds at the picked point.
  await page.getByRole('button', { name: 'Test failover', exact: true }).click();
  const dialog = page.getByRole('dialog');
  assert.match((await dialog.textContent())!, new RegExp(`isolated on the master target at the point of .*seq ${older.seq} of disk0`));
  await dialog.getByRole('button', { name: 'Start test failover' }).click();
  const panel = page.locator('.job-panel');
  await panel.locator('.job-state').getByText('succeeded').waitFor({ timeout: 15_000 });
  assert.match((await panel.locator('td[data-label="Point used"]').textContent())!, new RegExp(`seq ${older.seq}`));
  assert.match((await panel.textContent())!, new RegExp(`Point picked: .*seq ${older.seq}`));
  await panel.getByText('Console log of db1 (evidence)').click();
  await check(page, 'machine-1280');

  // The keyboard alone: arrows move the pick in the point list, Enter opens a confirmation that
  // takes the focus and passes the checks, Escape cancels it; the focus ring shows.
  await page.locator('#point-latest').focus();
  await page.keyboard.press('ArrowDown');
  const picked = await page.locator('input[name="point"]:checked').getAttribute('id');
  assert.ok(db.disks.map((d) => `point-${d}-${newest.seq}`).includes(picked!), `the arrow key picked the newest point, not ${picked}`);
  assert.equal(await page.evaluate('document.activeElement?.id'), picked, 'the picked point keeps the focus');
  const jobsBefore = (await adminGet(`/vaults/${vaultId}/jobs`)).items.length;
  await page.locator('#action-bookmark').focus();
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate('document.activeElement?.id'), 'action-bookmark');
  assert.notEqual(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle'), 'none', 'a keyboard focus is visible');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  assert.equal(await page.evaluate('document.activeElement?.id'), 'bookmark-name', 'the dialog takes the focus');
  await check(page, 'bookmark-dialog-1280');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'hidden' });
  assert.equal((await adminGet(`/vaults/${vaultId}/jobs`)).items.length, jobsBefore, 'Escape started nothing');

  // The dashboard: totals, charts and the machines.
  await nav(page, 'Dashboard');
  await page.locator('#machines-table').getByText('CONTINUOUS').first().waitFor();
  assert.equal(await page.locator('#total-protected').textContent(), '2');
  assert.equal(await page.locator('#total-over').textContent(), '0');
  assert.match((await page.locator('#machines-table tr[data-machine="db1"]').textContent())!, /within threshold/);
  assert.equal(await page.locator('svg.chart path.series').count(), 2);
  await check(page, 'dashboard-1280');

  // A plan of two ordered groups, made and edited in the page, and its test failover.
  await nav(page, 'Recovery plans');
  await page.getByRole('link', { name: 'New plan' }).click();
  await page.getByLabel('Plan name').fill('erp');
  await page.locator('.group-editor li').nth(0).getByLabel('Name').fill('database');
  await page.locator('.group-editor li').nth(0).getByLabel('db1').check();
  await page.getByRole('button', { name: 'Add group' }).click();
  await page.locator('.group-editor li').nth(1).getByLabel('Name').fill('application');
  await page.locator('.group-editor li').nth(1).getByLabel('app1').check();
  await page.getByRole('button', { name: 'Save plan' }).click();
  await page.getByRole('heading', { name: 'erp', level: 1 }).waitFor();
  await page.getByRole('link', { name: 'Edit plan' }).click();
  await page.getByLabel('Plan name').fill('erp-production');
  await page.getByLabel('Console text that means booted').fill('login:');
  await check(page, 'plan-editor-1280');
  await page.getByRole('button', { name: 'Save plan' }).click();
  await page.getByRole('heading', { name: 'erp-production', level: 1 }).waitFor();
  assert.deepEqual(await page.locator('.group-list > li strong').allTextContents(), ['database', 'application']);
  assert.match((await page.locator('#plan-boot-check').textContent())!, /console must show “login:”/);
  await page.getByRole('button', { name: 'Test failover', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Start test failover' }).click();
  await page.locator('.job-panel .job-state').getByText('succeeded').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('.job-panel td.step-state').allTextContents().then((s) => s.join()), 'ready,ready');
  await check(page, 'plan-1280');

  // A drill scheduled from the plan's page runs (test failover, cleanup) and leaves a report with evidence.
  await page.getByRole('button', { name: 'Schedule' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Schedule' }).click();
  await page.getByText(/^Every 1 d, next/).waitFor();
  await cp.runScheduledWork();
  const report = page.locator('.reports li').first();
  await report.waitFor({ timeout: 15_000 });
  assert.match((await report.textContent())!, /passed.*checks 2\/2.*cleaned up/);
  assert.match((await report.locator('.boot-pattern').textContent())!, /the console had to show “login:”/);
  await nav(page, 'Jobs and drills');
  await page.locator('#jobs-table tbody tr').nth(3).waitFor();
  await page.locator('.reports details').first().click();
  assert.match((await page.locator('.reports pre').first().textContent())!, /login:/);
  await check(page, 'jobs-1280');

  // A viewer sees the page but cannot start a job, and the server refuses it.
  await nav(page, 'Enrollment');
  const tokens = page.getByRole('region', { name: 'Operator tokens' });
  await tokens.getByLabel('Name').fill('auditor');
  await tokens.getByLabel('Role').selectOption('viewer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const viewerToken = (await page.locator('#new-token').textContent())!;
  const viewer = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  viewer.on('pageerror', (err) => failures.push(err.message));
  await signIn(viewer, cp.url, viewerToken);
  assert.equal(await viewer.locator('.role').textContent(), 'viewer');
  await viewer.goto(`${cp.url}/console/#/machines/${db.id}`);
  const button = viewer.getByRole('button', { name: 'Test failover', exact: true });
  await button.waitFor();
  assert.ok(await button.isDisabled());
  assert.match((await viewer.locator('#action-test-failover-why').textContent())!, /needs the operator role/);
  assert.equal(await viewer.getByRole('button', { name: 'Failover', exact: true }).isDisabled(), true);
  assert.equal(await viewer.getByRole('button', { name: 'Bookmark', exact: true }).isDisabled(), true);
  await check(viewer, 'machine-viewer-1280');
  const planId = (await adminGet(`/vaults/${vaultId}/plans`)).items[0].id;
  const refused = await viewer.evaluate(async ([vault, plan]) => {
    const token = (globalThis as unknown as { sessionStorage: { getItem(k: string): string } }).sessionStorage.getItem('tidemark.token');
    const res = await fetch(`/api/v1/vaults/${vault}/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'test-failover', planId: plan }),
    });
    return res.status;
  }, [vaultId, planId]);
  assert.equal(refused, 403);
  await viewer.close();

  // A phone (390 px): every page fits its width and passes the same checks.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  phone.on('pageerror', (err) => failures.push(err.message));
  await signIn(phone, cp.url, cp.adminToken);
  const erpId = (await adminGet(`/vaults/${vaultId}/plans`)).items.find((p: { name: string }) => p.name === 'erp-production').id;
  const phonePages: Array<[string, string, () => Promise<void>]> = [
    ['dashboard-390', '#/', () => phone.locator('#machines-table').getByText('CONTINUOUS').first().waitFor()],
    ['machine-390', `#/machines/${db.id}`, () => phone.locator('#disks-table').getByText('CONTINUOUS').first().waitFor()],
    ['plans-390', '#/plans', () => phone.locator('#plans-table').waitFor()],
    ['plan-390', `#/plans/${erpId}`, () => phone.locator('.reports li').first().waitFor()],
    ['plan-editor-390', `#/plans/${erpId}/edit`, () => phone.getByLabel('Plan name').waitFor()],
    ['jobs-390', '#/jobs', () => phone.locator('#jobs-table').waitFor()],
    ['enrollment-390', '#/enroll', () => phone.locator('#policies-table').waitFor()],
  ];
  for (const [name, hash, ready] of phonePages) {
    await phone.goto(`${cp.url}/console/${hash}`);
    await ready();
    await check(phone, name);
  }
  await phone.close();

  assert.deepEqual(a11y, [], 'axe-core finds nothing on any page');
  assert.deepEqual(failures, []);
  stop.abort();
  await master;
  console.log(`console browser test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
