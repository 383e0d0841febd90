/**
 * A machine "brought up" as disk images: each disk is exported through the master target's
 * own API at the job's point (by default the newest consistent point at or before the job's
 * time), into the machine's
 * work folder, and hashed. No boot yet (that needs views and a hypervisor adapter): with a
 * boot check asked for, a progress event says it was skipped.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Check, RecoveryPointRef } from '../../core/control-plane/protocol.ts';
import type { BringUpRequest, BringUpResult, MachineRecovery } from './recovery.ts';
import type { ApiPoint, MasterTargetApi } from './master-target-api.ts';
import { resolvePointChoice } from './point-choice.ts';

/** The control plane's name of each kind of point the master target lists. */
export const KIND: Record<ApiPoint['kind'], NonNullable<RecoveryPointRef['kind']>> = {
  crash: 'crash-consistent', app: 'app-consistent', group: 'group', bookmark: 'bookmark',
};

/** The image file of `disk` in a machine's work folder. */
export function imagePath(workDir: string, disk: string): string {
  return join(workDir, `${disk}.img`);
}

export class ImageExportRecovery implements MachineRecovery {
  constructor(private readonly api: MasterTargetApi) {}

  async bringUp(req: BringUpRequest): Promise<BringUpResult> {
    await mkdir(req.workDir, { recursive: true, mode: 0o700 });
    const checks: Check[] = [];
    const lines: string[] = [];
    let oldest: RecoveryPointRef | undefined;
    const at = await resolvePointChoice(this.api, req.machine, req.point, req.atTime, req.signal);
    for (const d of req.machine.disks) {
      await req.progress(`exporting ${d.name} at ${at.label}`);
      const started = Date.now();
      const img = await this.api.exportImage(req.machine.name, d.name, at.diskAt(d.name), imagePath(req.workDir, d.name), req.signal);
      const p = await this.api.point(req.machine.name, d.name, img.pointId, req.signal);
      if (!p) throw new Error(`point ${img.pointId} of ${d.name} was exported but is not listed (retention?)`);
      const ref: RecoveryPointRef = { time: p.time, seq: p.seq, kind: KIND[p.kind] };
      if (!oldest || Date.parse(ref.time) < Date.parse(oldest.time)) oldest = ref;
      const detail = `image of ${d.name} exported at point ${p.id} (${ref.kind}, ${p.time}), ${img.sizeBytes} bytes, sha256 ${img.sha256}`;
      checks.push({ name: `export ${d.name}`, passed: true, detail });
      if (d.sizeBytes && d.sizeBytes !== img.sizeBytes) {
        checks.push({ name: `size ${d.name}`, passed: false, detail: `enrolled as ${d.sizeBytes} bytes, the replica has ${img.sizeBytes}` });
      }
      lines.push(`${detail}, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    if (!oldest) throw new Error(`machine ${req.machine.name} has no disks`);
    if (req.bootCheck) await req.progress('boot check skipped: this master target materialises disk images only');
    return { point: oldest, checks, evidence: lines.join('\n').slice(0, 65536) };
  }

  async tearDown(workDir: string): Promise<void> {
    await rm(workDir, { recursive: true, force: true });
  }
}
