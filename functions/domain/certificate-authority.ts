/**
 * Each vault's certificate authority (docs/security.md): an ECDSA P-256 key and a self-signed
 * CA certificate, made with the vault and kept as the record `v1/vault-ca/<vaultId>.json` of
 * the control plane's store (locally a file of mode 0600 in a 0700 folder; in AWS an object of
 * the private, encrypted state bucket). It signs the certificate of each component that
 * enrolls, and of operators; a certificate names its holder's identity
 * (`core/tls/identity.ts`), taken from the enrollment, never from the request's subject.
 */
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { nowIso, type Context } from '../deps.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { identityUri, type ComponentIdentity } from '../../core/tls/identity.ts';
import { generateKeyPair, importPrivateKey, SIGNING_ALGORITHM, x509 } from '../../core/tls/x509.ts';
import { keys } from './keys.ts';
import { recordIssued } from './certificate-records.ts';
import { normalizeSerial } from '../../core/tls/serial.ts';

/** Lifetime of a vault's CA certificate. */
export const CA_VALIDITY_DAYS = 3650;
/**
 * Tolerated clock difference between the control plane and a component, at most a tenth of a
 * certificate's lifetime (so that the share of it left, which renewal goes by, stays meaningful
 * for short lifetimes).
 */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

export const VaultCa = z.object({
  vaultId: z.string(),
  certificatePem: z.string(),
  privateKeyPem: z.string(),
  createdAt: z.string(),
});
export type VaultCa = z.infer<typeof VaultCa>;

export interface IssuedCertificate {
  /** PEM of the component's certificate. */
  readonly certificate: string;
  /** PEM of the vault's CA certificate: the only one the component trusts. */
  readonly caCertificate: string;
  readonly notAfter: string;
  /** Lowercase hex without leading zeros (`core/tls/serial.ts`): how it is revoked. */
  readonly serial: string;
}

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // positive
  return b.toString('hex');
}

async function makeCa(ctx: Context, vaultId: string): Promise<VaultCa> {
  const keys = await generateKeyPair();
  const now = ctx.now();
  const name = `CN=Tidemark vault ${vaultId} CA, O=${vaultId}`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { vaultId, certificatePem: cert.toString('pem'), privateKeyPem: keys.privateKeyPem, createdAt: nowIso(ctx) };
}

/** The vault's CA, made on first use (vaults made before CAs existed get theirs here). */
export async function ensureVaultCa(ctx: Context, vaultId: string): Promise<VaultCa> {
  const have = await ctx.repo.get(keys.vaultCa(vaultId), VaultCa);
  if (have) return have;
  const ca = await makeCa(ctx, vaultId);
  try {
    await ctx.repo.create(keys.vaultCa(vaultId), ca);
    ctx.log.info('vault certificate authority created', { vaultId });
    return ca;
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    return (await ctx.repo.get(keys.vaultCa(vaultId), VaultCa))!;
  }
}

/** Reads a PEM certificate request and checks its signature (its sender holds the key). */
export async function checkedRequest(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw new InvalidRequestError('csr is not a PEM certificate request', { field: 'csr', cause, hint: 'send a PKCS#10 request in PEM, made with an ECDSA P-256 key' });
  }
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw new InvalidRequestError('csr must carry an ECDSA P-256 public key', { field: 'csr' });
  }
  if (!(await csr.verify())) throw new InvalidRequestError('csr signature does not verify', { field: 'csr' });
  return csr;
}

/** Host names and addresses a server certificate is valid for. */
function hostNames(hosts: readonly string[]): Array<{ type: 'ip' | 'dns'; value: string }> {
  return hosts.map((h) => ({ type: /^[\d.]+$/.test(h) || h.includes(':') ? 'ip' as const : 'dns' as const, value: h.replace(/^\[|\]$/g, '') }));
}

/**
 * Signs the key of `csrPem` as `identity` and keeps a record of the certificate (by serial).
 * `hosts` (the host of a server's URL) make it a server certificate too; every certificate can
 * authenticate its holder as a TLS client. `renewalOf` is the serial of the certificate a
 * renewal replaces.
 */
export async function issueCertificate(
  ctx: Context,
  identity: ComponentIdentity,
  csrPem: string,
  hosts: readonly string[] = [],
  options: { renewalOf?: string } = {},
): Promise<IssuedCertificate> {
  const csr = await checkedRequest(csrPem);
  const ca = await ensureVaultCa(ctx, identity.vaultId);
  const caCert = new x509.X509Certificate(ca.certificatePem);
  const now = ctx.now();
  const lifetimeMs = ctx.settings.certificateValiditySeconds * 1000;
  const notAfter = new Date(now + lifetimeMs);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [identity.name] }, { O: [identity.vaultId] }, { OU: [identity.role] }],
    issuer: caCert.subject,
    notBefore: new Date(now - Math.min(BACKDATE_MS, lifetimeMs / 10)),
    notAfter,
    publicKey: csr.publicKey,
    signingKey: await importPrivateKey(ca.privateKeyPem),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(hosts.length ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityUri(identity) }, ...hostNames(hosts)], true),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  const issued = { certificate: cert.toString('pem'), caCertificate: ca.certificatePem, notAfter: notAfter.toISOString(), serial: normalizeSerial(cert.serialNumber) };
  await recordIssued(ctx, { serial: issued.serial, identity, hosts, notAfter: issued.notAfter, renewalOf: options.renewalOf });
  return issued;
}
