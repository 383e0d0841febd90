/**
 * Renewal (docs/security.md, "Revocation and renewal"): a component with a site credential
 * asks for a new certificate of the same identity, for a new key, before its current one
 * expires. It proves that it holds the current certificate's key by signing the new request
 * with it; the current certificate must be this vault CA's, valid now, unrevoked, and name the
 * caller's own identity. The new certificate names the same identity and hosts. The old one
 * is not revoked: it simply expires.
 */
import { X509Certificate, verify } from 'node:crypto';
import { identityOfPeerCertificate } from '../../core/tls/identity.ts';
import { normalizeSerial } from '../../core/tls/serial.ts';
import type { Context } from '../deps.ts';
import { ForbiddenError, InvalidRequestError } from '../errors.ts';
import type { SitePrincipal } from './records.ts';
import { checkedRequest, ensureVaultCa, issueCertificate, type IssuedCertificate } from './certificate-authority.ts';
import { revokedCertificates } from './certificate-revocation.ts';

export interface RenewalRequest {
  /** PEM of the certificate held now. */
  readonly certificate: string;
  /** PKCS#10 request (PEM) for the new key. */
  readonly csr: string;
  /** Base64 ECDSA-SHA256 signature (DER) of the `csr` text's UTF-8 bytes, by the current key. */
  readonly signature: string;
}

function parse(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (cause) {
    throw new InvalidRequestError('certificate is not a PEM certificate', { field: 'certificate', cause });
  }
}

/** `IP Address:1.2.3.4` and `DNS:x` entries of a certificate's subject alternative names. */
function hostsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(/,\s*/).flatMap((s) => {
    const m = /^(?:IP Address|DNS):(.+)$/.exec(s);
    return m ? [m[1]!] : [];
  });
}

function isCaller(principal: SitePrincipal, role: string, id: string): boolean {
  return principal.kind === 'agent' ? role === 'agent' && id === principal.machineId : role === principal.role && id === principal.serverId;
}

export async function renewCertificate(ctx: Context, caller: { vaultId: string; principal: SitePrincipal }, req: RenewalRequest): Promise<IssuedCertificate> {
  await checkedRequest(req.csr);
  const current = parse(req.certificate);
  const ca = new X509Certificate((await ensureVaultCa(ctx, caller.vaultId)).certificatePem);
  const refuse = (why: string) => new ForbiddenError(`certificate ${normalizeSerial(current.serialNumber)} cannot be renewed: ${why}`, { hint: 'enroll again with a registration key' });
  if (!current.checkIssued(ca) || !current.verify(ca.publicKey)) throw refuse("it is not from this vault's CA");
  const now = ctx.now();
  if (now < Date.parse(current.validFrom) || now > Date.parse(current.validTo)) throw refuse(`it is not valid now (valid ${current.validFrom} to ${current.validTo})`);
  const identity = identityOfPeerCertificate({ subject: { CN: /(?:^|\n)CN=([^\n]*)/.exec(current.subject)?.[1] }, subjectaltname: current.subjectAltName });
  if (!identity || identity.vaultId !== caller.vaultId || !isCaller(caller.principal, identity.role, identity.id)) throw refuse('it names another identity than this credential');
  const serial = normalizeSerial(current.serialNumber);
  const revoked = (await revokedCertificates(ctx, caller.vaultId)).find((r) => r.serial === serial);
  if (revoked) throw refuse(`it was revoked at ${revoked.revokedAt}`);
  let signed = false;
  try {
    signed = verify('sha256', Buffer.from(req.csr, 'utf8'), current.publicKey, Buffer.from(req.signature, 'base64'));
  } catch {
    signed = false;
  }
  if (!signed) throw new InvalidRequestError("signature is not the current certificate's key's signature of the csr", { field: 'signature' });
  const issued = await issueCertificate(ctx, identity, req.csr, hostsOf(current), { renewalOf: serial });
  ctx.log.info('certificate renewed', { vaultId: caller.vaultId, role: identity.role, subjectId: identity.id, serial: issued.serial, renewalOf: serial });
  return issued;
}
