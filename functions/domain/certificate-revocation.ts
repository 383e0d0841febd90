/**
 * Revoking a certificate (docs/security.md, "Revocation and renewal"). An admin revokes one by
 * its serial; the vault's revocation list, `v1/revocations/<vaultId>.json`, then names it
 * until it would have expired anyway, and process servers and master targets fetch that list
 * (`GET /api/v1/site/revocations`) and refuse its certificates. Revoking is idempotent and
 * audited. The list is written before the certificate's record, so a failure between the two
 * leaves the certificate refused, and a retry completes the record.
 */
import { z } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { ConflictError } from '../errors.ts';
import { recordAudit, type Actor } from './audit.ts';
import { CertificateRecord, getCertificate } from './certificate-records.ts';
import { keys } from './keys.ts';
import { getVault } from './lookup.ts';
import { Credential } from './records.ts';

export const RevokedCertificate = z.object({
  serial: z.string(),
  revokedAt: z.string(),
  /** When it expires: past that it is dropped from the list. */
  notAfter: z.string(),
  role: z.string(),
  subjectId: z.string(),
  name: z.string(),
}).openapi('RevokedCertificate');
export type RevokedCertificate = z.infer<typeof RevokedCertificate>;

export const RevocationListRecord = z.object({ vaultId: z.string(), updatedAt: z.string(), revoked: z.array(RevokedCertificate) });
export type RevocationListRecord = z.infer<typeof RevocationListRecord>;

/** The vault's revoked certificates that have not expired yet. */
export async function revokedCertificates(ctx: Context, vaultId: string): Promise<RevokedCertificate[]> {
  const list = await ctx.repo.get(keys.revocations(vaultId), RevocationListRecord);
  const now = ctx.now();
  return (list?.revoked ?? []).filter((r) => Date.parse(r.notAfter) > now);
}

async function addToList(ctx: Context, vaultId: string, entry: RevokedCertificate): Promise<void> {
  const now = ctx.now();
  const add = (revoked: RevokedCertificate[]) => [...revoked.filter((r) => r.serial !== entry.serial && Date.parse(r.notAfter) > now), entry];
  for (;;) {
    const changed = await ctx.repo.update(keys.revocations(vaultId), RevocationListRecord, (l) => ({ ...l, updatedAt: entry.revokedAt, revoked: add(l.revoked) }));
    if (changed) return;
    try {
      await ctx.repo.create(keys.revocations(vaultId), { vaultId, updatedAt: entry.revokedAt, revoked: [entry] });
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err; // made meanwhile: update it
    }
  }
}

/**
 * Revokes the site credentials of the agent or server a certificate names: it can then no
 * longer call the control plane, nor push to a process server with its credential instead of
 * its certificate. Returns how many were revoked now.
 */
async function revokeCredentialsOf(ctx: Context, cert: CertificateRecord): Promise<number> {
  if (cert.role === 'operator') return 0;
  const names = (p: Credential['principal']) => (p.kind === 'agent' ? p.machineId : p.serverId) === cert.subjectId;
  let revoked = 0;
  for (const c of await ctx.repo.list(keys.credentials(), Credential)) {
    if (c.vaultId !== cert.vaultId || c.revoked || !names(c.principal)) continue;
    await ctx.repo.update(keys.credential(c.id), Credential, (r) => ({ ...r, revoked: true }));
    revoked++;
  }
  return revoked;
}

/**
 * Revokes the certificate of `serial` (admin). Revoking it again changes nothing and says when
 * it was. With `revokeCredentials`, the site credentials of the agent or server it names are
 * revoked too (again or not).
 */
export async function revokeCertificate(
  ctx: Context,
  actor: Actor,
  vaultId: string,
  serial: string,
  options: { reason?: string | null; revokeCredentials?: boolean } = {},
): Promise<CertificateRecord> {
  const reason = options.reason ?? null;
  await getVault(ctx, vaultId);
  const cert = await getCertificate(ctx, vaultId, serial);
  const credentials = options.revokeCredentials ? await revokeCredentialsOf(ctx, cert) : 0;
  if (credentials > 0) {
    await recordAudit(ctx, actor, 'credential.revoke', { vaultId, targetId: cert.subjectId, detail: { role: cert.role, name: cert.name, credentials, certificate: cert.serial } });
  }
  const listed = (await revokedCertificates(ctx, vaultId)).some((r) => r.serial === cert.serial);
  // Revoked already: listed, or expired and so dropped from the list.
  if (cert.revokedAt && (listed || Date.parse(cert.notAfter) <= ctx.now())) return cert;
  const revokedAt = cert.revokedAt ?? new Date(ctx.now()).toISOString();
  await addToList(ctx, vaultId, { serial: cert.serial, revokedAt, notAfter: cert.notAfter, role: cert.role, subjectId: cert.subjectId, name: cert.name });
  const key = keys.item(vaultId, 'certificates', cert.serial);
  const updated = await ctx.repo.update(key, CertificateRecord, (c) => ({ ...c, revokedAt: c.revokedAt ?? revokedAt, reason: c.reason ?? reason }));
  await recordAudit(ctx, actor, 'certificate.revoke', {
    vaultId, targetId: cert.serial, detail: { role: cert.role, subjectId: cert.subjectId, name: cert.name, ...(reason ? { reason } : {}) },
  });
  ctx.log.info('certificate revoked', { vaultId, serial: cert.serial, role: cert.role, subjectId: cert.subjectId });
  return updated!.after;
}
