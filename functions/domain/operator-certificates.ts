/**
 * Operator certificates: how an operator's CLI reaches process servers and master targets
 * over TLS (docs/security.md). An admin has one issued for a key the CLI made; it names the
 * role `operator` and may do at those servers what the shared token may (status, points,
 * exports, views, failovers, bookmarks). The control plane keeps no secret of it.
 */
import type { Context } from '../deps.ts';
import { recordAudit, type Actor } from './audit.ts';
import { ensureVaultCa, issueCertificate, type IssuedCertificate } from './certificate-authority.ts';
import { newId } from './ids.ts';
import { getVault } from './lookup.ts';

export async function issueOperatorCertificate(
  ctx: Context,
  actor: Actor,
  vaultId: string,
  input: { name: string; csr: string },
): Promise<IssuedCertificate & { id: string }> {
  await getVault(ctx, vaultId);
  const id = newId('certificate');
  const issued = await issueCertificate(ctx, { vaultId, role: 'operator', id, name: input.name }, input.csr);
  await recordAudit(ctx, actor, 'operator-certificate.issue', { vaultId, targetId: id, detail: { name: input.name, notAfter: issued.notAfter } });
  return { id, ...issued };
}

/** The vault CA's certificate (public): what clients and servers of the vault trust. */
export async function vaultCaCertificate(ctx: Context, vaultId: string): Promise<string> {
  await getVault(ctx, vaultId);
  return (await ensureVaultCa(ctx, vaultId)).certificatePem;
}
