/**
 * An agent joining through the control plane: it enrolls once with a registration key
 * (reporting its machine and the size of each disk), keeps its credential in
 * `<stateDir>/enrollment.json` (mode 0600), then asks for its assignment until protection is
 * enabled and a process server is named. It then pushes to that process server with its own
 * credential, exactly as with a direct `--process-server` URL.
 *
 * @example
 *   const e = await enrollAgent({ controlPlaneUrl, registrationKey, stateDir, machine: 'web-01', siteName: 'primary', disks });
 *   const { processServerUrl } = await waitForAssignment({ controlPlaneUrl, credential: e.credential, log, signal });
 */
import { hostname, type } from 'node:os';
import { join } from 'node:path';
import { ControlPlaneClient } from '../../core/control-plane/client.ts';
import { ENROLLMENT_FILE, enrollOnce, type StoredEnrollment } from '../../core/control-plane/enrollment-file.ts';
import { UsageError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { diskName } from '../../core/names.ts';
import { openDisk } from '../disk-source.ts';
import { sleep } from '../uploader.ts';

/** How often an agent waiting for protection asks again. */
export const DEFAULT_ASSIGNMENT_POLL_MS = 5_000;

export interface EnrollAgentOptions {
  readonly controlPlaneUrl: string;
  /** Needed only the first time (until the credential is kept). */
  readonly registrationKey?: string;
  readonly stateDir: string;
  readonly machine: string;
  readonly siteName: string;
  /** Paths of the disks, in order (named disk0, disk1, ...). */
  readonly disks: string[];
  readonly signal?: AbortSignal;
}

export async function enrollAgent(o: EnrollAgentOptions): Promise<{ enrollment: StoredEnrollment; enrolledNow: boolean }> {
  const sizes: number[] = [];
  for (const path of o.disks) {
    const src = await openDisk(path);
    sizes.push(src.sizeBytes);
    await src.fh.close();
  }
  const r = await enrollOnce(join(o.stateDir, ENROLLMENT_FILE), o.controlPlaneUrl, () => {
    if (!o.registrationKey) {
      throw new UsageError('this agent is not enrolled yet: give --key with a registration key', { hint: 'an admin makes one with POST /api/v1/vaults/{id}/registration-keys; tidemark up prints one' });
    }
    return {
      registrationKey: o.registrationKey, role: 'agent', name: o.machine, siteName: o.siteName,
      hostname: hostname(), os: type(), softwareVersion: '0.1.0',
      disks: sizes.map((sizeBytes, i) => ({ name: diskName(i), sizeBytes })),
    };
  }, { signal: o.signal });
  const e = r.enrollment;
  if (e.role !== 'agent') throw new UsageError(`${join(o.stateDir, ENROLLMENT_FILE)} is the enrollment of a ${e.role}, not of an agent`);
  if (e.name !== o.machine) {
    throw new UsageError(`this state folder is enrolled as machine ${e.name}, not ${o.machine}`, { hint: `use --machine ${e.name}, or another --state folder to enroll a new machine` });
  }
  const enrolled = e.disks?.length ?? 0;
  if (enrolled !== o.disks.length) {
    throw new UsageError(`machine ${e.name} was enrolled with ${enrolled} disk(s), not ${o.disks.length}`, { hint: 'give the same --disk options as when it enrolled' });
  }
  return r;
}

/** Asks for the assignment until a process server is named; resolves with its URL. */
export async function waitForAssignment(o: {
  controlPlaneUrl: string; credential: string; log: Logger; signal: AbortSignal; pollMs?: number;
}): Promise<{ processServerUrl: string; machineId: string }> {
  const client = new ControlPlaneClient({ url: o.controlPlaneUrl, credential: o.credential });
  let told = false;
  let backoffMs = 1000;
  for (;;) {
    o.signal.throwIfAborted();
    try {
      const a = await client.getAssignment({ signal: o.signal });
      backoffMs = 1000;
      if (a.processServer?.url) {
        o.log.info('assigned to a process server', { machineId: a.machineId, processServer: a.processServer.url });
        return { processServerUrl: a.processServer.url, machineId: a.machineId };
      }
      if (!told) o.log.info('enrolled; waiting for an operator to enable protection', { machineId: a.machineId });
      told = true;
      await sleep(o.pollMs ?? DEFAULT_ASSIGNMENT_POLL_MS, o.signal);
    } catch (err) {
      if (o.signal.aborted) throw err;
      const status = (err as { status?: number }).status;
      if (status === 401 || status === 403) {
        throw new UsageError(`the control plane refused this agent's credential (${status})`, { cause: err, hint: 'move enrollment.json out of the state folder and enroll again with a new --key' });
      }
      o.log.warn('cannot read the assignment; retrying', { error: err as Error, retryInMs: backoffMs });
      await sleep(backoffMs, o.signal);
      backoffMs = Math.min(backoffMs * 2, 60_000);
    }
  }
}
