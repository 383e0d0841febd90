/** Replication policies: RPO alert threshold, retention, app-consistent interval, bandwidth. */
import { nowIso, type Context } from '../deps.ts';
import { recordAudit, type Actor } from './audit.ts';
import { newId } from './ids.ts';
import { keys } from './keys.ts';
import { getVault } from './lookup.ts';
import type { Policy } from './records.ts';

export type PolicyInput = Omit<Policy, 'id' | 'vaultId' | 'createdAt'>;

export async function createPolicy(ctx: Context, actor: Actor, vaultId: string, input: PolicyInput): Promise<Policy> {
  await getVault(ctx, vaultId);
  const policy: Policy = { id: newId('policy'), vaultId, ...input, createdAt: nowIso(ctx) };
  await ctx.repo.create(keys.item(vaultId, 'policies', policy.id), policy);
  await recordAudit(ctx, actor, 'policy.create', { vaultId, targetId: policy.id, detail: { name: policy.name } });
  return policy;
}
