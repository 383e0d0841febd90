/** Recovery plans: ordered groups of machines, each with actions before and after it. */
import { nowIso, type Context } from '../deps.ts';
import { InvalidRequestError } from '../errors.ts';
import { recordAudit, type Actor } from './audit.ts';
import { newId } from './ids.ts';
import { keys } from './keys.ts';
import { getVault } from './lookup.ts';
import { Machine, type Plan } from './records.ts';

export type PlanInput = Omit<Plan, 'id' | 'vaultId' | 'createdAt'>;

export async function createPlan(ctx: Context, actor: Actor, vaultId: string, input: PlanInput): Promise<Plan> {
  await getVault(ctx, vaultId);
  const seen = new Set<string>();
  for (const [g, group] of input.groups.entries()) {
    for (const [m, machineId] of group.machineIds.entries()) {
      const field = `groups.${g}.machineIds.${m}`;
      if (seen.has(machineId)) throw new InvalidRequestError(`machine ${machineId} is in the plan twice`, { field });
      seen.add(machineId);
      if (!(await ctx.repo.get(keys.item(vaultId, 'machines', machineId), Machine))) {
        throw new InvalidRequestError(`no machine ${machineId} in vault ${vaultId}`, { field });
      }
    }
  }
  const plan: Plan = { id: newId('plan'), vaultId, ...input, createdAt: nowIso(ctx) };
  await ctx.repo.create(keys.item(vaultId, 'plans', plan.id), plan);
  await recordAudit(ctx, actor, 'plan.create', { vaultId, targetId: plan.id, detail: { name: plan.name, machines: seen.size } });
  return plan;
}
