/**
 * The master target's link to the control plane (docs/control-plane-api.md). It only calls
 * out: it long-polls its command queue, runs `failover.start` and `test-failover.cleanup`
 * through `FailoverJobs` (each machine brought up by a `MachineRecovery`; by default, when the
 * master target serves views (`--nbd`), a test failover through its failover API with the
 * replica booted for the boot check, and otherwise disk images exported through its HTTP
 * API), remembers the machines protected here (`protection.enable`; the master target creates a
 * replica when the first batch arrives), reports the recovery points it keeps of them when
 * they change, and sends a heartbeat every `heartbeatIntervalMs`.
 *
 * @example
 *   const link = await startMasterTargetSiteLink({ client, masterTargetUrl: mt.url, token, dataDir, log });
 *   await link.close();
 */
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';
import { runCommandLoop, runEvery } from '../../core/control-plane/command-loop.ts';
import type { SiteCommand } from '../../core/control-plane/protocol.ts';
import type { Logger } from '../../core/log.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import type { IngestAssignments } from './ingest-assignments.ts';
import type { RevocationList } from '../../core/tls/revocation-list.ts';
import { runRevocationPoll } from '../../core/control-plane/revocation-poll.ts';
import { FailoverJobs } from './failover-jobs.ts';
import { ImageExportRecovery } from './image-export-recovery.ts';
import { MasterTargetApi } from './master-target-api.ts';
import type { MachineRecovery } from './recovery.ts';
import { Assignments } from '../../core/control-plane/assignments.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_POINTS_INTERVAL_MS, pointsReporter } from './points-report.ts';
import { ViewBootRecovery, type ViewBootSettings } from './view-boot-recovery.ts';

/** How often the master target says it is alive. */
export const DEFAULT_MT_HEARTBEAT_INTERVAL_MS = 30_000;

export interface MasterTargetSiteLinkOptions {
  readonly client: ControlPlaneClient;
  /** The master target's own HTTP API (exports, points). */
  readonly masterTargetUrl: string;
  /** Its bearer token, if it has one. */
  readonly token?: string;
  /** Its own certificate, to call its API over TLS. */
  readonly tls?: TlsIdentity;
  /** Where the process server of each protected machine is recorded, for the API's access checks. */
  readonly ingestAssignments?: IngestAssignments;
  /** The vault's revoked certificates, fetched every `revocationPollIntervalMs` for the API's checks. */
  readonly revocations?: RevocationList;
  /** @default DEFAULT_REVOCATION_POLL_INTERVAL_MS */
  readonly revocationPollIntervalMs?: number;
  /** The master target's data folder; job work folders go below it. */
  readonly dataDir: string;
  readonly log: Logger;
  /**
   * @default test failovers through the master target's failover API when it serves views,
   * disk images exported through `masterTargetUrl` when it does not
   */
  readonly recovery?: MachineRecovery;
  /** The replica and the boot check of the default recovery. @default firmware boot, any console output within 300 s */
  readonly boot?: ViewBootSettings;
  /** @default 30000 */
  readonly heartbeatIntervalMs?: number;
  /** How often the kept recovery points are looked at (and reported when they changed). @default 5000 */
  readonly pointsIntervalMs?: number;
  /** Seconds each command poll waits. @default 20 */
  readonly pollWaitSeconds?: number;
  readonly softwareVersion?: string;
}

export interface MasterTargetSiteLink {
  readonly jobs: FailoverJobs;
  /** The machines protected here (from `protection.enable`). */
  readonly assignments: Assignments;
  close(): Promise<void>;
}

export async function startMasterTargetSiteLink(o: MasterTargetSiteLinkOptions): Promise<MasterTargetSiteLink> {
  const stop = new AbortController();
  const log = o.log.child({ link: 'control-plane' });
  const api = new MasterTargetApi(o.masterTargetUrl, o.token, o.tls);
  const recovery = o.recovery ?? new ViewBootRecovery({ api, fallback: new ImageExportRecovery(api), log, ...(o.boot ? { boot: o.boot } : {}) });
  const jobs = new FailoverJobs({ client: o.client, recovery, dataDir: o.dataDir, log, signal: stop.signal });
  const assignmentsDir = join(o.dataDir, 'site-link');
  await mkdir(assignmentsDir, { recursive: true });
  const assignments = await Assignments.open(assignmentsDir);

  const handle = async (cmd: SiteCommand): Promise<void> => {
    switch (cmd.type) {
      case 'failover.start':
        log.info('failover group received', { jobId: cmd.jobId, mode: cmd.mode, group: cmd.groupIndex, machines: cmd.machines.length });
        return jobs.start(cmd);
      case 'test-failover.cleanup':
        log.info('test failover cleanup received', { jobId: cmd.jobId, testFailoverJobId: cmd.testFailoverJobId, machines: cmd.machineIds.length });
        return jobs.cleanup(cmd);
      case 'protection.enable':
        await assignments.enable(cmd);
        log.info('machine protected here', { machineId: cmd.machine.id, machine: cmd.machine.name, retentionSeconds: cmd.policy.retentionSeconds });
        await o.ingestAssignments?.enable(cmd);
        return;
      case 'protection.disable':
        await assignments.disable(cmd.machineId);
        log.info('machine no longer protected; its replica is kept', { machineId: cmd.machineId });
        await o.ingestAssignments?.disable(cmd.machineId);
        return;
      default:
        log.warn('command not meant for a master target ignored', { type: cmd.type, commandId: cmd.id });
    }
  };

  const commands = runCommandLoop(o.client, handle, { log, signal: stop.signal, waitSeconds: o.pollWaitSeconds });
  const heartbeats = runEvery(o.heartbeatIntervalMs ?? DEFAULT_MT_HEARTBEAT_INTERVAL_MS, 'heartbeat',
    () => o.client.sendHeartbeat({ ...(o.softwareVersion ? { softwareVersion: o.softwareVersion } : {}), disks: [] }, { signal: stop.signal }),
    { log, signal: stop.signal });
  const points = runEvery(o.pointsIntervalMs ?? DEFAULT_POINTS_INTERVAL_MS, 'recovery points report',
    pointsReporter({ assignments, api, client: o.client, log, signal: stop.signal }), { log, signal: stop.signal });
  const revocations = o.revocations && runRevocationPoll(o.client, o.revocations, { intervalMs: o.revocationPollIntervalMs, log, signal: stop.signal });
  log.info('control plane link started', { masterTarget: o.masterTargetUrl });
  return {
    jobs,
    assignments,
    async close() {
      stop.abort();
      await Promise.all([commands, heartbeats, points, revocations]);
    },
  };
}
