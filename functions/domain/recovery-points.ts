/**
 * The recovery points master targets keep, as they report them (`POST /site/recovery-points`):
 * one record per machine, replaced by each report of the machine's own master target. The
 * console's timeline is built from it; the control plane never asks a site.
 */
import { z } from '@hono/zod-openapi';
import { DiskPoints, type RecoveryPointsReport } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { evaluateRetentionAlerts } from './alerts.ts';
import { isId } from './ids.ts';
import { keys } from './keys.ts';
import { Machine, Policy } from './records.ts';

export const MachinePoints = z.object({
  vaultId: z.string(),
  machineId: z.string(),
  masterTargetId: z.string().nullable(),
  reportedAt: z.string().nullable().describe('when the master target last reported; null: never'),
  disks: z.array(DiskPoints),
}).openapi('MachinePoints');
export type MachinePoints = z.infer<typeof MachinePoints>;

/**
 * Stores each machine of the report that is protected with `serverId` as its master target,
 * keeping only the machine's own disks, and raises or clears its `retention-shortened` alerts;
 * returns how many machines were taken and ignored.
 */
export async function applyPointsReport(ctx: Context, vaultId: string, serverId: string, report: RecoveryPointsReport): Promise<{ accepted: number; ignored: number }> {
  let accepted = 0;
  for (const m of report.machines) {
    const machine = isId('machine', m.machineId) ? await ctx.repo.get(keys.item(vaultId, 'machines', m.machineId), Machine) : undefined;
    if (!machine || machine.protection?.masterTargetId !== serverId) {
      ctx.log.warn('recovery points ignored: machine not protected by this master target', { vaultId, serverId, machineId: m.machineId.slice(0, 64) });
      continue;
    }
    const disks = m.disks.filter((d) => machine.disks.some((x) => x.id === d.diskId));
    const record: MachinePoints = { vaultId, machineId: machine.id, masterTargetId: serverId, reportedAt: nowIso(ctx), disks };
    await ctx.repo.put(keys.item(vaultId, 'recovery-points', machine.id), record);
    const policy = await ctx.repo.get(keys.item(vaultId, 'policies', machine.protection.policyId), Policy);
    if (policy) await evaluateRetentionAlerts(ctx, machine, policy, disks);
    accepted++;
  }
  return { accepted, ignored: report.machines.length - accepted };
}

/** The machine's points as last reported (no disks before the first report). */
export async function readMachinePoints(ctx: Context, vaultId: string, machineId: string): Promise<MachinePoints> {
  const r = await ctx.repo.get(keys.item(vaultId, 'recovery-points', machineId), MachinePoints);
  return r ?? { vaultId, machineId, masterTargetId: null, reportedAt: null, disks: [] };
}
