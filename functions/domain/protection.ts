/**
 * Enabling protection of a machine: assign a process server and a master target (the least
 * loaded of the vault when not named), record it on the machine, and push the machine and
 * its policy to both as site commands.
 */
import type { MachineSpec, PolicySpec } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { ConflictError, InvalidRequestError } from '../errors.ts';
import { recordAudit, type Actor } from './audit.ts';
import { keys } from './keys.ts';
import { getItem, listItems } from './lookup.ts';
import { Machine, Policy, Server, type ServerRole } from './records.ts';
import { sendCommand } from './site-commands.ts';

export function machineSpec(m: Machine): MachineSpec {
  return { id: m.id, name: m.name, hostname: m.hostname, disks: m.disks.map((d) => ({ id: d.id, name: d.name, sizeBytes: d.sizeBytes })) };
}

export function policySpec(p: Policy): PolicySpec {
  return {
    id: p.id,
    rpoThresholdSeconds: p.rpoThresholdSeconds,
    retentionSeconds: p.retentionSeconds,
    appConsistentIntervalSeconds: p.appConsistentIntervalSeconds,
    bandwidthLimitBytesPerSecond: p.bandwidthLimitBytesPerSecond,
  };
}

async function chooseServer(
  ctx: Context,
  vaultId: string,
  role: ServerRole,
  requested: string | undefined,
  machines: Machine[],
): Promise<Server> {
  const field = role === 'process-server' ? 'processServerId' : 'masterTargetId';
  if (requested) {
    const s = await getItem(ctx, vaultId, 'servers', 'server', requested, Server).catch(() => undefined);
    if (!s) throw new InvalidRequestError(`no server ${requested} in vault ${vaultId}`, { field });
    if (s.role !== role) throw new InvalidRequestError(`server ${requested} is a ${s.role}, not a ${role}`, { field });
    return s;
  }
  const candidates = (await listItems(ctx, vaultId, 'servers', Server)).filter((s) => s.role === role);
  if (candidates.length === 0) {
    throw new ConflictError(`no ${role} is enrolled in vault ${vaultId}`, { hint: `enroll a ${role} with a registration key first` });
  }
  const load = (s: Server) => machines.filter((m) => m.protection?.processServerId === s.id || m.protection?.masterTargetId === s.id).length;
  return candidates.reduce((best, s) => (load(s) < load(best) ? s : best));
}

export async function enableProtection(
  ctx: Context,
  actor: Actor,
  vaultId: string,
  machineId: string,
  input: { policyId: string; processServerId?: string; masterTargetId?: string },
): Promise<Machine> {
  const machine = await getItem(ctx, vaultId, 'machines', 'machine', machineId, Machine);
  const policy = await getItem(ctx, vaultId, 'policies', 'policy', input.policyId, Policy).catch(() => undefined);
  if (!policy) throw new InvalidRequestError(`no policy ${input.policyId} in vault ${vaultId}`, { field: 'policyId' });
  const machines = await listItems(ctx, vaultId, 'machines', Machine);
  const ps = await chooseServer(ctx, vaultId, 'process-server', input.processServerId, machines);
  const mt = await chooseServer(ctx, vaultId, 'master-target', input.masterTargetId, machines);

  const protection = { policyId: policy.id, processServerId: ps.id, masterTargetId: mt.id, enabledAt: nowIso(ctx) };
  const updated = await ctx.repo.update(keys.item(vaultId, 'machines', machine.id), Machine, (m) => ({ ...m, protection }));
  const after = updated!.after;
  const draft = {
    type: 'protection.enable' as const,
    machine: machineSpec(after),
    policy: policySpec(policy),
    processServer: { id: ps.id, url: ps.url },
    masterTarget: { id: mt.id, url: mt.url },
  };
  await sendCommand(ctx, ps.id, draft);
  await sendCommand(ctx, mt.id, draft);
  await recordAudit(ctx, actor, 'protection.enable', {
    vaultId, targetId: machine.id, detail: { policyId: policy.id, processServerId: ps.id, masterTargetId: mt.id },
  });
  return after;
}

export async function disableProtection(ctx: Context, actor: Actor, vaultId: string, machineId: string): Promise<Machine> {
  const machine = await getItem(ctx, vaultId, 'machines', 'machine', machineId, Machine);
  const was = machine.protection;
  if (!was) throw new ConflictError(`machine ${machineId} is not protected`);
  const updated = await ctx.repo.update(keys.item(vaultId, 'machines', machine.id), Machine, (m) => ({ ...m, protection: null }));
  for (const serverId of [was.processServerId, was.masterTargetId]) {
    await sendCommand(ctx, serverId, { type: 'protection.disable', machineId });
  }
  await recordAudit(ctx, actor, 'protection.disable', { vaultId, targetId: machineId });
  return updated!.after;
}
