/**
 * What the process server tells the control plane about the disks assigned to it: state,
 * lag, backlog and the newest change the master target applied, from its own stream status.
 *
 * `lagSeconds` is the protocol's: the age of the newest change the master target has applied
 * (so a silent agent's lag grows, and the RPO alert follows). Before anything was applied it
 * is the age of the oldest change waiting; for a disk whose agent never connected, the time
 * since the machine was assigned.
 */
import type { DiskReport, Heartbeat, SpoolReport } from '../../core/control-plane/protocol.ts';
import type { Streams } from '../streams.ts';
import { diskStatus } from '../status.ts';
import type { Assignments } from '../../core/control-plane/assignments.ts';

export function buildHeartbeat(assignments: Assignments, streams: Streams, nowMs: number, softwareVersion?: string, spool?: SpoolReport): Heartbeat {
  const byName = new Map(streams.all().map((s) => [`${s.machine}/${s.disk}`, s]));
  const disks: DiskReport[] = [];
  for (const a of assignments.list()) {
    for (const d of a.machine.disks) {
      const s = byName.get(`${a.machine.name}/${d.name}`);
      if (!s) {
        const sinceMs = Date.parse(a.issuedAt);
        disks.push({
          machineId: a.machine.id, diskId: d.id, state: 'DISCONNECTED', backlogBytes: 0,
          lagSeconds: Number.isFinite(sinceMs) ? round(Math.max(0, (nowMs - sinceMs) / 1000)) : 0,
        });
        continue;
      }
      const st = diskStatus(s, nowMs);
      const lagSeconds = s.lastAppliedTimeMs > 0 ? Math.max(0, (nowMs - s.lastAppliedTimeMs) / 1000) : st.lagSeconds;
      disks.push({
        machineId: a.machine.id, diskId: d.id, state: st.state, lagSeconds: round(lagSeconds), backlogBytes: st.backlogBytes,
        ...(s.lastAppliedTimeMs > 0 ? { latestPoint: { time: new Date(s.lastAppliedTimeMs).toISOString(), seq: st.appliedSeq } } : {}),
      });
    }
  }
  return { ...(softwareVersion ? { softwareVersion } : {}), ...(spool ? { spool } : {}), disks: disks.slice(0, 1000) };
}

function round(s: number): number {
  return Math.round(s * 1000) / 1000;
}
