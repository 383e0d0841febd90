/**
 * The master target tells the control plane which recovery points it keeps of the machines it
 * protects (`POST /api/v1/site/recovery-points`), compactly: per disk the kept range, the
 * retention tiers, the newest points and the marked ones (from its own `…/points/summary`).
 * The control plane never asks: this link reports every `intervalMs` when something changed,
 * and at least every `refreshMs`.
 */
import type { Assignments } from '../../core/control-plane/assignments.ts';
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';
import type { DiskPoints, ListedPoint, RecoveryPointsReport } from '../../core/control-plane/protocol.ts';
import type { Logger } from '../../core/log.ts';
import type { ApiPoint, MasterTargetApi } from './master-target-api.ts';

/** How often the master target's points are looked at. */
export const DEFAULT_POINTS_INTERVAL_MS = 5_000;
/** A report is sent at least this often, changed or not. */
export const POINTS_REFRESH_MS = 300_000;
/** Machines per report (the protocol allows 20). */
const MACHINES_PER_REPORT = 20;

function listed(p: ApiPoint): ListedPoint {
  return { id: p.id, seq: p.seq, time: p.time, kind: p.kind, ...(p.name !== undefined ? { name: p.name.slice(0, 200) } : {}) };
}

/** The report of every assigned machine that has at least one disk here. */
export async function buildPointsReport(assignments: Assignments, api: MasterTargetApi, signal?: AbortSignal): Promise<RecoveryPointsReport['machines']> {
  const machines: RecoveryPointsReport['machines'] = [];
  for (const a of assignments.list()) {
    const disks: DiskPoints[] = [];
    for (const d of a.machine.disks) {
      const s = await api.pointsSummary(a.machine.name, d.name, signal);
      if (!s) continue;
      disks.push({
        diskId: d.id, appliedSeq: s.appliedSeq, oldest: s.oldest && listed(s.oldest), newest: s.newest && listed(s.newest),
        tiers: s.tiers, recent: s.recent.map(listed), marked: s.marked.map(listed),
        ...(s.shortenedForSpaceTime !== undefined ? { shortenedForSpaceTime: s.shortenedForSpaceTime } : {}),
      });
    }
    if (disks.length > 0) machines.push({ machineId: a.machine.id, disks });
  }
  return machines;
}

/** Reports points when they changed; returns the function the link calls every interval. */
export function pointsReporter(o: { assignments: Assignments; api: MasterTargetApi; client: ControlPlaneClient; log: Logger; signal: AbortSignal; now?: () => number }): () => Promise<void> {
  let lastSent = '';
  let lastSentMs = 0;
  const now = o.now ?? Date.now;
  return async () => {
    const machines = await buildPointsReport(o.assignments, o.api, o.signal);
    const text = JSON.stringify(machines);
    if (machines.length === 0 || (text === lastSent && now() - lastSentMs < POINTS_REFRESH_MS)) return;
    for (let i = 0; i < machines.length; i += MACHINES_PER_REPORT) {
      await o.client.sendRecoveryPoints({ machines: machines.slice(i, i + MACHINES_PER_REPORT) }, { signal: o.signal });
    }
    lastSent = text;
    lastSentMs = now();
    o.log.debug('recovery points reported', { machines: machines.length });
  };
}
