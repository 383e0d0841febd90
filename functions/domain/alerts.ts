/**
 * Alerts, computed from what sites report: `rpo-exceeded` when a disk's lag passes its
 * policy's RPO threshold, `resync-needed` while a disk is in RESYNC, `stream-stalled` while a
 * disk is STALLED or has not been reported on for `reportStaleSeconds`, and, from the master
 * target's recovery-points reports, `retention-shortened` while space limits left a disk less
 * history than the policy's retention window. One alert record per kind and disk (a stable id);
 * it is raised, cleared and raised again in place.
 */
import { createHash } from 'node:crypto';
import type { DiskPoints } from '../../core/control-plane/protocol.ts';
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

/** A window as people read it: `7 d`, `36 h`, `90 min`, `45 s`. */
function windowText(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/**
 * `retention-shortened` of one disk from its master target's last report (undefined: the disk
 * was not in it). Active only when the master target says it deleted journal inside the window
 * for space AND the oldest kept point is younger than the policy's window now: a young
 * protection has a short history too, and a shortened one grows back to the whole window, and
 * neither is worth an alert.
 */
export function retentionConditionOf(disk: Disk, points: DiskPoints | undefined, policy: Policy, nowMs: number): AlertCondition {
  const oldestMs = points?.oldest ? Date.parse(points.oldest.time) : undefined;
  const short = oldestMs !== undefined && oldestMs > nowMs - policy.retentionSeconds * 1000;
  return {
    kind: 'retention-shortened',
    active: points?.shortenedForSpaceTime !== undefined && short,
    message: `disk ${disk.name} keeps recovery points back to ${points?.oldest?.time ?? 'none'} only, not the policy's ${windowText(policy.retentionSeconds)}: `
      + 'the master target deleted older journal to stay within its space limits',
  };
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

/** Evaluates `retention-shortened` of every disk of a protected machine from its master target's report. */
export async function evaluateRetentionAlerts(ctx: Context, machine: Machine, policy: Policy, reported: DiskPoints[]): Promise<void> {
  for (const disk of machine.disks) {
    await setAlert(ctx, machine, disk, retentionConditionOf(disk, reported.find((d) => d.diskId === disk.id), policy, ctx.now()));
  }
}
