/** Vaults: the unit of tenancy. Everything else belongs to exactly one. */
import { nowIso, type Context } from '../deps.ts';
import { recordAudit, type Actor } from './audit.ts';
import { newId } from './ids.ts';
import { keys } from './keys.ts';
import { Vault } from './records.ts';
import { ensureVaultCa } from './certificate-authority.ts';

export async function createVault(ctx: Context, actor: Actor, input: { name: string }): Promise<Vault> {
  const vault: Vault = { id: newId('vault'), name: input.name, createdAt: nowIso(ctx) };
  await ctx.repo.create(keys.vault(vault.id), vault);
  await ensureVaultCa(ctx, vault.id);
  await recordAudit(ctx, actor, 'vault.create', { vaultId: vault.id, targetId: vault.id, detail: { name: vault.name } });
  return vault;
}

export async function listVaults(ctx: Context): Promise<Vault[]> {
  return ctx.repo.list(keys.vaults(), Vault);
}
