/**
 * How a master target brings one machine up for a (test) failover, behind one interface so
 * that the way can change without touching the job runner: today `ImageExportRecovery`
 * materialises each disk as an image file; later a recovery that opens writable NBD views
 * and boots the machine under QEMU takes its place.
 */
import type { Check, MachineSpec, PointChoice, RecoveryPointRef } from '../../core/control-plane/protocol.ts';

export interface BringUpRequest {
  readonly jobId: string;
  readonly mode: 'test' | 'failover';
  readonly machine: MachineSpec;
  /** With `point` latest (or none): every disk comes up at its newest consistent point at or before this time. */
  readonly atTime: Date;
  /** The point the job names. @default 'latest' */
  readonly point?: PointChoice;
  /** The plan's console text meaning "booted" (literal); overrides the link's own setting. */
  readonly consolePattern?: string;
  /** A folder of this machine's own for this job: images, overlays, console logs. */
  readonly workDir: string;
  /** The plan asks for a boot check. */
  readonly bootCheck: boolean;
  readonly signal: AbortSignal;
  /** Reports a step (becomes a `progress` job event). */
  progress(message: string): Promise<void>;
}

export interface BringUpResult {
  /** The point used; with several disks, the oldest of theirs. */
  readonly point: RecoveryPointRef;
  readonly checks: Check[];
  /** Evidence for the report (console log, or what was materialised), at most 64 KiB. */
  readonly evidence: string;
}

export interface MachineRecovery {
  /** Brings the machine up; throws with a clear message if it cannot. */
  bringUp(req: BringUpRequest): Promise<BringUpResult>;
  /** Stops what `bringUp` started in `workDir` and removes it. Safe to call again. */
  tearDown(workDir: string): Promise<void>;
}
