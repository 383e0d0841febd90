/**
 * A component's TLS identity: its key, its certificate and the one CA it trusts (its vault's).
 * Enrolled components keep the key beside their enrollment file (`enrollment-key.pem`, mode
 * 0600) and the two certificates in it; an operator's identity is a folder of `key.pem`,
 * `cert.pem` and `ca.pem` (docs/security.md).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsageError } from '../errors.ts';
import { writeFileAtomic } from '../fsutil.ts';

export interface TlsIdentity {
  /** PEM of the vault CA: the only certificate trusted for peers. */
  readonly ca: string;
  /** PEM of this component's certificate. */
  readonly cert: string;
  /** PKCS#8 PEM of its private key. */
  readonly key: string;
  /**
   * As a client: the host a server's certificate must name instead of the host dialled. A
   * server that calls its own API on loopback sets its enrolled host here, which is all its
   * certificate names. @default the host of the URL dialled
   */
  readonly serverHost?: string;
  /**
   * As a client: refuse a server whose certificate is revoked (the vault's list as this
   * component last fetched it, `core/tls/revocation-list.ts`).
   */
  readonly revocations?: RevokedSerials;
}

/** Which serials are revoked (normalized, `core/tls/serial.ts`). */
export interface RevokedSerials {
  revokedAt(serial: string): string | undefined;
  /** Changes whenever the list does (clients then open new connections, checked against it). */
  readonly revision: number;
}

export const ENROLLMENT_KEY_FILE = 'enrollment-key.pem';

/** Where the key of the enrollment kept in `enrollmentPath` lives. */
export function enrollmentKeyPath(enrollmentPath: string): string {
  return join(dirname(enrollmentPath), ENROLLMENT_KEY_FILE);
}

/** Where a renewed key waits until the enrollment file names its certificate (`saveRenewedEnrollment`). */
export function nextEnrollmentKeyPath(enrollmentPath: string): string {
  return `${enrollmentKeyPath(enrollmentPath)}.next`;
}

/**
 * Finishes or undoes a renewal cut short: a waiting key that belongs to the enrollment's
 * certificate replaces the old key; one that does not (the certificate was never kept) is removed.
 */
async function settleRenewedKey(enrollmentPath: string, certificate: string): Promise<void> {
  const next = nextEnrollmentKeyPath(enrollmentPath);
  const pem = await readFile(next, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (pem === undefined) return;
  let matches = false;
  try {
    matches = new X509Certificate(certificate).checkPrivateKey(createPrivateKey(pem));
  } catch {
    matches = false;
  }
  if (matches) await rename(next, enrollmentKeyPath(enrollmentPath));
  else await unlink(next);
}

/** The identity of an enrollment, or undefined when it has no certificate (enrolled before certificates). */
export async function identityOfEnrollment(
  enrollmentPath: string,
  e: { certificate?: string; caCertificate?: string },
): Promise<TlsIdentity | undefined> {
  if (!e.certificate || !e.caCertificate) return undefined;
  await settleRenewedKey(enrollmentPath, e.certificate);
  const keyPath = enrollmentKeyPath(enrollmentPath);
  const key = await readFile(keyPath, 'utf8').catch((cause: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the key of ${enrollmentPath} at ${keyPath} (${cause.code ?? cause.message})`, { cause, hint: 'move the enrollment file away and enroll again' });
  });
  return { ca: e.caCertificate, cert: e.certificate, key };
}

export const IDENTITY_FILES = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;

/** Writes an identity folder (every file 0600). */
export async function saveIdentityDir(dir: string, id: TlsIdentity): Promise<void> {
  await writeFileAtomic(join(dir, IDENTITY_FILES.key), id.key);
  await writeFileAtomic(join(dir, IDENTITY_FILES.cert), id.cert);
  await writeFileAtomic(join(dir, IDENTITY_FILES.ca), id.ca);
}

/** Reads an identity folder; undefined if it has none of the files. */
export async function loadIdentityDir(dir: string): Promise<TlsIdentity | undefined> {
  const read = (f: string) => readFile(join(dir, f), 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const [ca, cert, key] = await Promise.all([read(IDENTITY_FILES.ca), read(IDENTITY_FILES.cert), read(IDENTITY_FILES.key)]);
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (!ca || !cert || !key) throw new UsageError(`${dir} lacks one of ca.pem, cert.pem and key.pem`, { hint: 'give a folder that holds all three' });
  return { ca, cert, key };
}
