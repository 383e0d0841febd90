/**
 * How a renewed certificate and key are kept (docs/security.md, "Renewal"): the enrollment
 * file is the commit point. A renewal cut short before it leaves the old pair (the waiting key
 * is removed at the next start); one cut short after it finishes at the next start.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEnrollment, saveEnrollment, saveRenewedEnrollment, type StoredEnrollment } from '../../core/control-plane/enrollment-file.ts';
import { identityOfEnrollment, nextEnrollmentKeyPath } from '../../core/tls/tls-identity.ts';
import { makeVault, type TestVault } from './support.ts';

let dir: string;
let vault: TestVault;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-renewed-key-'));
  vault = await makeVault('v');
});
after(async () => {
  await vault?.close();
  await rm(dir, { recursive: true, force: true });
});

async function enrolledFolder(name: string) {
  const folder = join(dir, name);
  const first = await vault.issue('process-server', 'ps1', ['127.0.0.1']);
  const path = join(folder, 'enrollment.json');
  const e = { v: 1, controlPlaneUrl: 'http://cp', name: 'ps1', credential: 'crd', vaultId: vault.vaultId, siteId: 's', role: 'process-server', certificate: first.cert, caCertificate: first.ca } as StoredEnrollment;
  await saveEnrollment(path, e);
  await writeFile(join(folder, 'enrollment-key.pem'), first.key, { mode: 0o600 });
  return { path, first, second: await vault.issue('process-server', 'ps1', ['127.0.0.1']) };
}

const matches = (cert: string, key: string) => new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));

it('keeps the new certificate and key together', async () => {
  const { path, second } = await enrolledFolder('whole');
  await saveRenewedEnrollment(path, second);
  const id = (await identityOfEnrollment(path, (await loadEnrollment(path))!))!;
  assert.equal(id.cert, second.cert);
  assert.equal(id.key, second.key);
  await assert.rejects(access(nextEnrollmentKeyPath(path)));
});

it('a renewal cut short before the enrollment file took the certificate keeps the old pair', async () => {
  const { path, first, second } = await enrolledFolder('before');
  await writeFile(nextEnrollmentKeyPath(path), second.key); // the new key was written, nothing else
  const id = (await identityOfEnrollment(path, (await loadEnrollment(path))!))!;
  assert.equal(id.cert, first.cert);
  assert.ok(matches(id.cert, id.key));
  await assert.rejects(access(nextEnrollmentKeyPath(path)), 'the orphan key is removed');
});

it('a renewal cut short after the enrollment file took the certificate finishes at the next start', async () => {
  const { path, second } = await enrolledFolder('after');
  await writeFile(nextEnrollmentKeyPath(path), second.key);
  await saveEnrollment(path, { ...(await loadEnrollment(path))!, certificate: second.cert });
  const id = (await identityOfEnrollment(path, (await loadEnrollment(path))!))!;
  assert.equal(id.cert, second.cert);
  assert.ok(matches(id.cert, id.key), 'the key is the new certificate\'s');
  assert.equal(await readFile(join(dir, 'after', 'enrollment-key.pem'), 'utf8'), second.key);
});
