/**
 * The console's Certificates page in a real browser (Debian's chromium through playwright-core)
 * against a control plane started in this process. An agent and a process server enroll with key
 * pairs and operator certificates are issued through the API, two of them on a clock set back so
 * that one has expired and one expires soon; the page lists them newest first with their states;
 * an admin revokes the agent's certificate and its credential from the page (the API then reports
 * both revoked, and who did it is shown); a record gone from under the page gives the API's error
 * and hint; a viewer and an operator see the list but no Revoke action, and the API refuses them.
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
import { enroll } from '../../core/control-plane/client.ts';
import { serialOfPem } from '../../core/tls/serial.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';
import { axeViolations } from '../helpers/axe.ts';
import { CHROMIUM, CHROMIUM_ARGS, signIn } from '../helpers/console-browser.ts';

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`;
const DAY_MS = 86_400_000;

/** The control plane's clock runs `offsetMs` from the real one (the page uses the real one). */
let offsetMs = 0;
let dataDir: string;
let cp: LocalControlPlane;
let browser: Browser;

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'tidemark-console-certs-'));
  cp = await startControlPlane({ dataDir, port: 0, host: '127.0.0.1', scheduleIntervalMs: 3600_000, now: () => Date.now() + offsetMs });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await cp?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The API with `token` (the admin's by default): status and body. */
async function call(method: string, path: string, body?: unknown, token = cp.adminToken): Promise<{ status: number; body: any }> {
  const res = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const r = await call(method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Accessibility findings and overflow of the page in view, by name. */
async function findings(page: Page, name: string): Promise<string[]> {
  const found = (await axeViolations(page)).map((v) => `${name}: ${v}`);
  const width = page.viewportSize()!.width;
  const wide = await page.evaluate(`[...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > ${width} + 0.5 && !e.closest('dialog:not([open])'))
    .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' ends at ' + Math.round(e.getBoundingClientRect().right) + ' px').slice(0, 5)`) as string[];
  return [...found, ...wide.map((e) => `${name}: wider than ${width} px: ${e}`)];
}

async function operatorCertificate(vaultId: string, name: string): Promise<string> {
  const keys = await generateKeyPair();
  return (await admin('POST', `/vaults/${vaultId}/operator-certificates`, { name, csr: await createCsr(keys, name) })).serial;
}

/** Saves a screenshot of the page for the docs when $TIDEMARK_SCREENSHOTS_DIR is set. */
async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.TIDEMARK_SCREENSHOTS_DIR;
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

const row = (page: Page, serial: string) => page.locator(`#certificates-table tr[data-serial="${serial}"]`);

it('lists the vault\'s certificates and revokes one, with its credential, from the page; viewers and operators cannot', { skip, timeout: 90_000 }, async () => {
  const vaultId = (await admin('POST', '/vaults', { name: 'main' })).id;
  const { key } = await admin('POST', `/vaults/${vaultId}/registration-keys`, {});

  // Issued in this order, each on its own clock time, so that newest first is a known order.
  offsetMs = -366 * DAY_MS;
  const expired = await operatorCertificate(vaultId, 'old-laptop');
  offsetMs = -300 * DAY_MS;
  const expiring = await operatorCertificate(vaultId, 'ops-desk');
  offsetMs = -2000;
  const agentKeys = await generateKeyPair();
  const agent = await enroll(cp.url, {
    registrationKey: key, role: 'agent', name: 'web-01', siteName: 'primary', hostname: 'web-01.example.net', os: 'debian 12',
    disks: [{ name: 'disk0', sizeBytes: 2 ** 30 }], csr: await createCsr(agentKeys, 'web-01'),
  });
  const agentSerial = serialOfPem(agent.certificate!);
  offsetMs = -1000;
  const psKeys = await generateKeyPair();
  const ps = await enroll(cp.url, { registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: 'https://ps1.example:7401', csr: await createCsr(psKeys, 'ps1') });
  const psSerial = serialOfPem(ps.certificate!);
  offsetMs = 0;
  const newest = await operatorCertificate(vaultId, 'cli');
  const siteCall = (credential: string) => call('GET', '/site/revocations', undefined, credential);
  assert.equal((await siteCall(agent.credential)).status, 200, 'the agent\'s credential works before');

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failures: string[] = [];
  const a11y: string[] = [];
  page.on('pageerror', (err) => failures.push(err.message));
  await signIn(page, cp.url, cp.adminToken);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Certificates' }).click();
  await page.getByRole('heading', { name: 'Certificates', level: 1 }).waitFor();
  await row(page, agentSerial).waitFor();

  // Newest first, each with whom it names and its state.
  assert.deepEqual(await page.locator('#certificates-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-serial'))),
    [newest, psSerial, agentSerial, expiring, expired]);
  const agentRow = row(page, agentSerial);
  assert.match((await agentRow.locator('td[data-label="Issued to"]').textContent())!, new RegExp(`web-01 agent${agent.machineId}`));
  assert.equal(await agentRow.locator('td[data-label="Issued to"] a').getAttribute('href'), `#/machines/${agent.machineId}`);
  assert.match((await row(page, psSerial).locator('td[data-label="Issued to"]').textContent())!, /ps1 process server.*for ps1\.example/);
  const states = async () => Object.fromEntries(await page.locator('#certificates-table tbody tr').evaluateAll((rows) =>
    rows.map((r) => [r.getAttribute('data-serial'), r.querySelector('.certificate-state .badge')?.textContent?.replace(/^\W+/, '')])));
  assert.deepEqual(await states(), { [newest]: 'valid', [psSerial]: 'valid', [agentSerial]: 'valid', [expiring]: 'expiring soon', [expired]: 'expired' });
  assert.equal(await row(page, expired).getByRole('button', { name: /^Revoke/ }).count(), 0, 'nothing to revoke on an expired certificate');
  assert.equal(await row(page, expiring).getByRole('button', { name: /^Revoke/ }).count(), 1, 'one expiring soon is still valid');
  a11y.push(...await findings(page, 'certificates-1280'));

  // Cancelled: nothing is revoked.
  await agentRow.getByRole('button', { name: /^Revoke/ }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await admin('GET', `/vaults/${vaultId}/certificates?subjectId=${agent.machineId}`)).items[0].revokedAt, null, 'cancel revoked nothing');

  // Confirmed, with the credential and a reason: the API reports both revoked; the row says by whom.
  await agentRow.getByRole('button', { name: /^Revoke/ }).click();
  assert.match((await dialog.textContent())!, new RegExp(`Certificate ${agentSerial} of agent web-01 will be refused`));
  await dialog.getByLabel('Reason (optional)').fill('disk stolen');
  await dialog.getByLabel('Also revoke its bearer credential').check();
  a11y.push(...await findings(page, 'revoke-dialog-1280'));
  await dialog.getByRole('button', { name: 'Revoke certificate' }).click();
  await agentRow.locator('.revoked-when', { hasText: 'by local admin (admin)' }).waitFor();
  assert.equal(await agentRow.locator('.certificate-state .badge').textContent(), '■ revoked');
  assert.equal(await agentRow.getByRole('button', { name: /^Revoke/ }).count(), 0, 'a revoked certificate has no Revoke action');
  const record = (await admin('GET', `/vaults/${vaultId}/certificates?subjectId=${agent.machineId}`)).items[0];
  assert.ok(record.revokedAt, 'the API reports the certificate revoked');
  assert.equal(record.reason, 'disk stolen');
  await shot(page, 'certificates-1280');
  assert.ok((await admin('GET', `/vaults/${vaultId}/revocations`)).items.some((r: any) => r.serial === agentSerial), 'it is on the revocation list');
  assert.equal((await siteCall(agent.credential)).status, 401, 'its credential was revoked too');
  assert.equal((await siteCall(ps.credential)).status, 200, 'the process server keeps its own');
  assert.equal((await admin('GET', `/vaults/${vaultId}/certificates?subjectId=${ps.serverId}`)).items[0].revokedAt, null, 'only the one picked was revoked');

  // The filter.
  await page.getByLabel('Show').selectOption('revoked');
  assert.deepEqual(await page.locator('#certificates-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-serial'))), [agentSerial]);
  await page.getByLabel('Show').selectOption('valid');
  assert.deepEqual(await page.locator('#certificates-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-serial'))), [newest, psSerial, expiring]);
  await page.getByLabel('Show').selectOption('all');

  // A record gone from under the page (removed from the store by hand): the API's error and hint.
  await rm(join(dataDir, 'control-plane', 'objects', 'v1', 'vault-data', vaultId, 'certificates', `${psSerial}.json@obj`));
  await row(page, psSerial).getByRole('button', { name: /^Revoke/ }).click();
  await dialog.getByRole('button', { name: 'Revoke certificate' }).click();
  const alert = page.locator('#certificates-message [role="alert"]');
  await alert.waitFor();
  assert.match((await alert.textContent())!, new RegExp(`revoking certificate ${psSerial} of ps1 failed: no certificate with serial .*list the vault's certificates to find the serial`));
  await page.close();

  // A viewer and an operator see the list, without any Revoke action; the API refuses them.
  for (const role of ['viewer', 'operator']) {
    const { token } = await admin('POST', '/operator-tokens', { name: `a ${role}`, role });
    const other = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    other.on('pageerror', (err) => failures.push(err.message));
    await signIn(other, cp.url, token);
    await other.goto(`${cp.url}/console/#/certificates`);
    await row(other, newest).waitFor();
    assert.equal(await other.locator('#certificates-table tbody tr').count(), 4, `the ${role} sees the list`);
    assert.equal(await other.getByRole('button', { name: /Revoke/ }).count(), 0, `the ${role} sees no Revoke action`);
    assert.match((await other.locator('#revoke-why').textContent())!, /needs the admin role/);
    if (role === 'viewer') a11y.push(...await findings(other, 'certificates-viewer-390'));
    assert.equal((await call('POST', `/vaults/${vaultId}/certificates/${newest}/revoke`, {}, token)).status, 403);
    await other.close();
  }
  assert.equal((await admin('GET', `/vaults/${vaultId}/certificates`)).items.find((c: any) => c.serial === newest).revokedAt, null);

  assert.deepEqual(a11y, [], 'axe-core finds nothing, and nothing is wider than the page');
  assert.deepEqual(failures, []);
});
