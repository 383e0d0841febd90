/**
 * Whether a standalone server serves TLS, from what its data folder holds: the scheme of the
 * URL it enrolled with; folders written before that URL was kept go by --url (default http),
 * so one enrolled over http keeps serving http. No control plane is asked: the enrollment is
 * on disk already.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enrollServer } from '../../cli/enroll-server.ts';
import { UsageError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';

const CP = 'http://127.0.0.1:1';
const listen = { host: '0.0.0.0', port: 7402 };
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tm-enroll-server-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A data folder holding an enrollment as `enrollOnce` writes it, with or without a certificate and a kept URL. */
async function folder(name: string, e: { url?: string; certificate?: boolean }): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  await writeFile(join(d, 'enrollment.json'), JSON.stringify({
    v: 1, controlPlaneUrl: CP, name: 'mt1', credential: 'crd_x.y', vaultId: 'vlt_a', siteId: 'ste_a', role: 'master-target', serverId: 'srv_a',
    ...(e.url ? { url: e.url } : {}), ...(e.certificate ? { certificate: 'CERT', caCertificate: 'CA' } : {}),
  }));
  if (e.certificate) await writeFile(join(d, 'enrollment-key.pem'), 'KEY');
  return d;
}

function logged(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('test', { write: (l) => lines.push(l) }), lines };
}

const enrollIn = (d: string, values: Record<string, string>, log = logged().log) =>
  enrollServer('master-target', 'master-target', { 'control-plane': CP, ...values }, d, listen, log);

test('a folder enrolled over http before URLs were kept serves http, with its certificate at hand', async () => {
  const e = await enrollIn(await folder('old-http', { certificate: true }), {});
  assert.equal(e?.tls, false);
  assert.equal(e?.url, 'http://127.0.0.1:7402');
  assert.deepEqual(e?.identity, { ca: 'CA', cert: 'CERT', key: 'KEY' });
});

test('the kept https URL decides on later starts, whatever --url says (which is logged)', async () => {
  const d = await folder('https', { url: 'https://dr-site:7402', certificate: true });
  assert.equal((await enrollIn(d, {}))?.tls, true);
  const { log, lines } = logged();
  const e = await enrollIn(d, { url: 'http://dr-site:7402' }, log);
  assert.equal(e?.tls, true);
  assert.equal(e?.url, 'https://dr-site:7402');
  assert.match(lines.join('\n'), /enrolled with another URL/);
});

test('refused: https without a certificate, and an https --url without a control plane', async () => {
  await assert.rejects(enrollIn(await folder('https-no-cert', { url: 'https://dr-site:7402' }), {}), (err: Error) => err instanceof UsageError && /enrolled before certificates existed/.test(err.message));
  await assert.rejects(
    enrollServer('master-target', 'master-target', { url: 'https://dr-site:7402' }, join(dir, 'none'), listen, logged().log),
    (err: Error) => err instanceof UsageError && /an https:\/\/ --url needs a certificate/.test(err.message),
  );
  assert.equal(await enrollServer('master-target', 'master-target', { url: 'http://lab:7402' }, join(dir, 'none'), listen, logged().log), undefined);
});
