/**
 * What the control plane keeps of each certificate a vault's CA issues (docs/security.md):
 * one record per certificate, `v1/vault-data/<vaultId>/certificates/<serial>.json`, written
 * when it is issued and changed once, when it is revoked. Operators find serials here; the
 * revocation list (`certificate-revocation.ts`) is what servers read.
 */
import { z } from '@hono/zod-openapi';
import { IDENTITY_ROLES, type ComponentIdentity } from '../../core/tls/identity.ts';
import { SERIAL_PATTERN } from '../../core/tls/serial.ts';
import type { Context } from '../deps.ts';
import { NotFoundError } from '../errors.ts';
import { keys } from './keys.ts';
import { checkId } from './lookup.ts';

const time = z.string().describe('ISO 8601 time');

export const CertificateRecord = z.object({
  serial: z.string().regex(SERIAL_PATTERN).describe('lowercase hex, no leading zeros'),
  vaultId: z.string(),
  role: z.enum(IDENTITY_ROLES),
  /** Machine id (agents), server id, or operator certificate id: the identity the certificate names. */
  subjectId: z.string(),
  name: z.string(),
  /** Host names and addresses of a server certificate. */
  hosts: z.array(z.string()),
  issuedAt: time,
  notAfter: time,
  /** The serial of the certificate this one renewed, if it was a renewal. */
  renewalOf: z.string().nullable(),
  revokedAt: time.nullable(),
  reason: z.string().nullable(),
}).openapi('Certificate');
export type CertificateRecord = z.infer<typeof CertificateRecord>;

/** Keeps the record of a certificate just issued. */
export async function recordIssued(
  ctx: Context,
  c: { serial: string; identity: ComponentIdentity; hosts: readonly string[]; notAfter: string; renewalOf?: string },
): Promise<void> {
  const record: CertificateRecord = {
    serial: c.serial, vaultId: c.identity.vaultId, role: c.identity.role, subjectId: c.identity.id, name: c.identity.name,
    hosts: [...c.hosts], issuedAt: new Date(ctx.now()).toISOString(), notAfter: c.notAfter, renewalOf: c.renewalOf ?? null, revokedAt: null, reason: null,
  };
  await ctx.repo.create(keys.item(c.identity.vaultId, 'certificates', c.serial), record);
}

/** The record of `serial` in the vault; NotFoundError if there is none. */
export async function getCertificate(ctx: Context, vaultId: string, serial: string): Promise<CertificateRecord> {
  checkId('vault', vaultId);
  const s = serial.toLowerCase();
  const r = SERIAL_PATTERN.test(s) ? await ctx.repo.get(keys.item(vaultId, 'certificates', s), CertificateRecord) : undefined;
  if (!r) throw new NotFoundError(`no certificate with serial ${JSON.stringify(serial.slice(0, 80))} in vault ${vaultId}`, { hint: 'list the vault\'s certificates to find the serial' });
  return r;
}

/** The vault's certificates, optionally only those naming `subjectId` (a machine, server or operator certificate id). */
export async function listCertificates(ctx: Context, vaultId: string, filter: { subjectId?: string } = {}): Promise<CertificateRecord[]> {
  checkId('vault', vaultId);
  const all = await ctx.repo.list(keys.items(vaultId, 'certificates'), CertificateRecord);
  return filter.subjectId ? all.filter((c) => c.subjectId === filter.subjectId) : all;
}
