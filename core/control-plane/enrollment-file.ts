/**
 * A component's enrollment kept on disk (mode 0600) so that it enrolls once: the control
 * plane's URL, the credential and the ids it was given. Format version 1:
 * `{ "v": 1, "controlPlaneUrl", "name", "credential", "vaultId", "siteId", "role", "serverId"?, "url"?, "machineId"?, "disks"?, "certificate"?, "caCertificate"? }`
 * (`url`: the URL a server enrolled with; files written before it was kept lack it);
 * the key of the certificate is `enrollment-key.pem` beside it (0600).
 *
 * @example
 *   const e = await enrollOnce(join(dataDir, 'enrollment.json'), url, () => ({ registrationKey: key, role: 'process-server', name: 'ps1', siteName: 'primary', url: myUrl }));
 *   const cp = new ControlPlaneClient({ url: e.controlPlaneUrl, credential: e.credential });
 */
import { readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from '../errors.ts';
import { syncDir, writeFileAtomic } from '../fsutil.ts';
import { enroll } from './client.ts';
import type { EnrollRequest, EnrollResponse } from './protocol.ts';
import { createCsr, generateKeyPair } from '../tls/x509.ts';
import { enrollmentKeyPath, nextEnrollmentKeyPath } from '../tls/tls-identity.ts';

/** The enrollment file's name in every component's data or state folder. */
export const ENROLLMENT_FILE = 'enrollment.json';
export const ENROLLMENT_FILE_VERSION = 1;

export interface StoredEnrollment extends EnrollResponse {
  v: 1;
  controlPlaneUrl: string;
  /** The name enrolled with (an agent's machine name, a server's name). */
  name: string;
  /** A server's URL as enrolled (its peers are told it); absent in files made before it was kept. */
  url?: string;
}

/** The enrollment in `path`, or undefined if there is none; refuses a version it does not know. */
export async function loadEnrollment(path: string): Promise<StoredEnrollment | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const e = JSON.parse(text) as StoredEnrollment;
  if (e?.v !== ENROLLMENT_FILE_VERSION || typeof e.credential !== 'string') {
    throw new UsageError(`${path} is not an enrollment file of version ${ENROLLMENT_FILE_VERSION}`, { hint: 'move it away to enroll again' });
  }
  return e;
}

export async function saveEnrollment(path: string, e: StoredEnrollment): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(e, null, 2) + '\n');
}

/**
 * Keeps a renewed certificate and its key in place of the enrollment's (docs/security.md): the
 * new key goes beside the old one (`enrollment-key.pem.next`), then `enrollment.json` takes the
 * new certificate (the commit point), then the new key replaces the old. A crash before the
 * commit leaves the old pair; after it, `identityOfEnrollment` finishes the move.
 */
export async function saveRenewedEnrollment(path: string, renewed: { cert: string; key: string; ca: string }): Promise<void> {
  const have = await loadEnrollment(path);
  if (!have) throw new UsageError(`${path} is gone: cannot keep the renewed certificate`);
  const next = nextEnrollmentKeyPath(path);
  await writeFileAtomic(next, renewed.key);
  await saveEnrollment(path, { ...have, certificate: renewed.cert, caCertificate: renewed.ca });
  await rename(next, enrollmentKeyPath(path));
  await syncDir(dirname(path));
}

/**
 * The enrollment kept in `path`, or a new one (enrolled with `request()`, then saved 0600).
 * `request` is only called when enrolling, so a registration key is needed only the first time.
 */
export async function enrollOnce(
  path: string,
  controlPlaneUrl: string,
  request: () => EnrollRequest,
  options: { signal?: AbortSignal } = {},
): Promise<{ enrollment: StoredEnrollment; enrolledNow: boolean }> {
  const have = await loadEnrollment(path);
  if (have) {
    if (have.controlPlaneUrl.replace(/\/+$/, '') !== controlPlaneUrl.replace(/\/+$/, '')) {
      throw new UsageError(`${path} holds an enrollment with ${have.controlPlaneUrl}, not ${controlPlaneUrl}`, {
        hint: 'use the same control plane, or move the file away to enroll with the new one',
      });
    }
    return { enrollment: have, enrolledNow: false };
  }
  const req = request();
  // The key never leaves this machine: it is kept beside the enrollment (0600) before the
  // request for its certificate is sent.
  const keys = await generateKeyPair();
  await writeFileAtomic(enrollmentKeyPath(path), keys.privateKeyPem);
  const answer = await enroll(controlPlaneUrl, { ...req, csr: await createCsr(keys, req.name) }, options);
  const enrollment: StoredEnrollment = { v: 1, controlPlaneUrl, name: req.name, ...(req.url ? { url: req.url } : {}), ...answer };
  await saveEnrollment(path, enrollment);
  return { enrollment, enrolledNow: true };
}
