/**
 * Alerts, computed from what sites report: `rpo-exceeded` when a disk's lag passes its
 * policy's RPO threshold, `resync-needed` while a disk is in RESYNC, `stream-stalled` while a
 * disk is STALLED or has not been reported on for `reportStaleSeconds`. One alert record per
 * kind and disk (a stable id); it is raised, cleared and raised again in place.
 */
import { createHash } from 'node:crypto';
import { nowIso, type Context } from '../deps.ts';
import { derivedId } from './ids.ts';
import { keys } from './keys.ts';
import { Alert, type AlertKind, type Disk, type Machine, type Policy } from './records.ts';

export interface AlertCondition {
  readonly kind: AlertKind;
  readonly active: boolean;
  readonly message: string;
}

export function alertIdOf(kind: AlertKind, diskId: string): string {
  return derivedId('alert', createHash('sha256').update(`${kind}/${diskId}`).digest());
}

/** The alert conditions of one protected disk at `nowMs`. */
export function conditionsOf(disk: Disk, policy: Policy, nowMs: number, reportStaleSeconds: number): AlertCondition[] {
  const lag = disk.lagSeconds;
  const silentSeconds = disk.reportedAt ? (nowMs - Date.parse(disk.reportedAt)) / 1000 : null;
  const silent = silentSeconds !== null && silentSeconds > reportStaleSeconds;
  return [
    {
      kind: 'rpo-exceeded',
      active: lag !== null && lag > policy.rpoThresholdSeconds,
      message: `disk ${disk.name} is ${lag ?? 0} s behind, over the RPO threshold of ${policy.rpoThresholdSeconds} s`,
    },
    {
      kind: 'resync-needed',
      active: disk.state === 'RESYNC',
      message: `disk ${disk.name} is resynchronising: its change stream was interrupted`,
    },
    {
      kind: 'stream-stalled',
      active: disk.state === 'STALLED' || silent,
      message: silent
        ? `no report on disk ${disk.name} for ${Math.round(silentSeconds!)} s`
        : `the stream of disk ${disk.name} is stalled`,
    },
  ];
}

/** Raises or clears one alert; writes only when its state changes. */
export async function setAlert(ctx: Context, machine: Machine, disk: Disk, c: AlertCondition): Promise<void> {
  const id = alertIdOf(c.kind, disk.id);
  const key = keys.item(machine.vaultId, 'alerts', id);
  const current = await ctx.repo.get(key, Alert);
  if (c.active && current?.state !== 'active') {
    const alert: Alert = {
      id, vaultId: machine.vaultId, kind: c.kind, machineId: machine.id, diskId: disk.id,
      state: 'active', message: c.message, raisedAt: nowIso(ctx), clearedAt: null,
    };
    await ctx.repo.put(key, alert);
    ctx.log.warn('alert raised', { vaultId: machine.vaultId, alertId: id, kind: c.kind, machineId: machine.id, diskId: disk.id });
  } else if (!c.active && current?.state === 'active') {
    await ctx.repo.put(key, { ...current, state: 'cleared', clearedAt: nowIso(ctx) });
    ctx.log.info('alert cleared', { vaultId: machine.vaultId, alertId: id, kind: c.kind });
  }
}

/** Evaluates every alert of every disk of a protected machine. */
export async function evaluateMachineAlerts(ctx: Context, machine: Machine, policy: Policy): Promise<void> {
  for (const disk of machine.disks) {
    for (const c of conditionsOf(disk, policy, ctx.now(), ctx.settings.reportStaleSeconds)) await setAlert(ctx, machine, disk, c);
  }
}
