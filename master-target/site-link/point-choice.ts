/**
 * The point a `failover.start` names, as the master target's own API takes it (`at`: latest,
 * a point id of the machine's first disk, or an ISO time). A point id belongs to one disk:
 * that disk comes up at exactly that point, the others at the newest kept point at or before
 * its time (the master target's API does the same for an id of the first disk).
 */
import type { MachineSpec, PointChoice } from '../../core/control-plane/protocol.ts';
import type { MasterTargetApi } from './master-target-api.ts';

export interface ResolvedPoint {
  /** For the whole machine (`POST …/failover`). */
  readonly machineAt: string;
  /** For one disk (`GET …/image?at=`). */
  diskAt(disk: string): string;
  /** For messages: "the newest point at or before …", "point 1234 of disk0". */
  readonly label: string;
}

/** The disk the master target lists first (its streams sort by name): an id passed for the machine is one of its points. */
function firstDisk(machine: MachineSpec): string | undefined {
  return machine.disks.map((d) => d.name).sort((a, b) => a.localeCompare(b))[0];
}

export async function resolvePointChoice(api: MasterTargetApi, machine: MachineSpec, choice: PointChoice | undefined, latestTime: Date, signal?: AbortSignal): Promise<ResolvedPoint> {
  if (choice === undefined || choice === 'latest') {
    const at = latestTime.toISOString();
    return { machineAt: at, diskAt: () => at, label: `the newest point at or before ${at}` };
  }
  if ('time' in choice) {
    return { machineAt: choice.time, diskAt: () => choice.time, label: `the newest kept point at or before ${choice.time}` };
  }
  const disk = machine.disks.find((d) => d.id === choice.diskId);
  if (!disk) throw new Error(`point ${choice.id} names disk ${choice.diskId}, which is not a disk of ${machine.name}`);
  const p = await api.point(machine.name, disk.name, choice.id, signal);
  if (!p) throw new Error(`point ${choice.id} of ${machine.name}/${disk.name} is not kept at the master target (retention may have dropped it); pick a newer one`);
  return {
    machineAt: firstDisk(machine) === disk.name ? p.id : p.time,
    diskAt: (name) => (name === disk.name ? p.id : p.time),
    label: `point ${p.id} of ${disk.name} (${p.time})`,
  };
}
