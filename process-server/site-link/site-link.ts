/**
 * The process server's link to the control plane (docs/control-plane-api.md). It only calls
 * out: it long-polls its command queue and carries out `protection.enable` and
 * `protection.disable` (idempotently, remembering the assigned machines under `dir`) and
 * `bookmark.request` (handed to the agents through the bookmark book), and
 * sends a heartbeat with every assigned disk's metrics every `heartbeatIntervalMs`.
 *
 * @example
 *   const link = await startProcessServerSiteLink({ client, streams, dir: join(dataDir, 'site-link'), log });
 *   await link.close();
 */
import { mkdir } from 'node:fs/promises';
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';
import { runCommandLoop, runEvery } from '../../core/control-plane/command-loop.ts';
import type { SiteCommand, SpoolReport } from '../../core/control-plane/protocol.ts';
import type { Logger } from '../../core/log.ts';
import type { Streams } from '../streams.ts';
import { Assignments } from '../../core/control-plane/assignments.ts';
import { buildHeartbeat } from './heartbeat.ts';
import type { BookmarkBook } from '../bookmarks.ts';
import { BookmarkRequests } from './bookmark-requests.ts';
import type { RevocationList } from '../../core/tls/revocation-list.ts';
import { runRevocationPoll } from '../../core/control-plane/revocation-poll.ts';

/** How often the process server reports its disks. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;

export interface ProcessServerSiteLinkOptions {
  readonly client: ControlPlaneClient;
  readonly streams: Streams;
  /** Where the assignments are kept. */
  readonly dir: string;
  readonly log: Logger;
  /** Bookmark requests waiting for agents (the HTTP API's): `bookmark.request` commands go here. */
  readonly bookmarks?: BookmarkBook;
  /** How long an agent has to tag a bookmark. @default 300000 */
  readonly bookmarkTimeoutMs?: number;
  /** The master target this process server ships to (it ships every stream there). */
  readonly masterTargetUrl?: string;
  /** @default 5000 */
  readonly heartbeatIntervalMs?: number;
  /** Seconds each command poll waits. @default 20 */
  readonly pollWaitSeconds?: number;
  readonly softwareVersion?: string;
  /** The whole spool's use and level, reported with each heartbeat. */
  readonly spool?: () => SpoolReport;
  /** The vault's revoked certificates, fetched every `revocationPollIntervalMs` for the API's checks. */
  readonly revocations?: RevocationList;
  /** @default DEFAULT_REVOCATION_POLL_INTERVAL_MS */
  readonly revocationPollIntervalMs?: number;
}

export interface ProcessServerSiteLink {
  readonly assignments: Assignments;
  /** Sends a heartbeat now (the loop does this every interval). */
  sendHeartbeat(): Promise<void>;
  close(): Promise<void>;
}

export async function startProcessServerSiteLink(o: ProcessServerSiteLinkOptions): Promise<ProcessServerSiteLink> {
  await mkdir(o.dir, { recursive: true });
  const assignments = await Assignments.open(o.dir);
  const stop = new AbortController();
  const log = o.log.child({ link: 'control-plane' });
  const sendHeartbeat = async () => {
    await o.client.sendHeartbeat(buildHeartbeat(assignments, o.streams, Date.now(), o.softwareVersion, o.spool?.()), { signal: stop.signal });
  };

  const bookmarks = o.bookmarks && new BookmarkRequests({ book: o.bookmarks, client: o.client, log, signal: stop.signal, timeoutMs: o.bookmarkTimeoutMs });
  const handle = async (cmd: SiteCommand): Promise<void> => {
    switch (cmd.type) {
      case 'protection.enable': {
        const changed = await assignments.enable(cmd);
        log.info(changed ? 'machine assigned' : 'machine assignment unchanged', {
          machineId: cmd.machine.id, machine: cmd.machine.name, disks: cmd.machine.disks.length, masterTarget: cmd.masterTarget.url, commandId: cmd.id,
        });
        if (o.masterTargetUrl && cmd.masterTarget.url !== o.masterTargetUrl.replace(/\/+$/, '')) {
          log.warn('the assigned master target is not the one this process server ships to', {
            machineId: cmd.machine.id, assigned: cmd.masterTarget.url, shipsTo: o.masterTargetUrl,
          });
        }
        return;
      }
      case 'protection.disable': {
        const was = await assignments.disable(cmd.machineId);
        log.info(was ? 'machine unassigned' : 'machine was not assigned', { machineId: cmd.machineId, commandId: cmd.id });
        return;
      }
      case 'bookmark.request':
        if (bookmarks) return bookmarks.handle(cmd);
        log.warn('bookmark request ignored: this process server takes no bookmarks', { jobId: cmd.jobId, commandId: cmd.id });
        return;
      default:
        log.warn('command not meant for a process server ignored', { type: cmd.type, commandId: cmd.id });
    }
  };

  const commands = runCommandLoop(o.client, handle, { log, signal: stop.signal, waitSeconds: o.pollWaitSeconds });
  const heartbeats = runEvery(o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS, 'heartbeat', sendHeartbeat, { log, signal: stop.signal });
  const revocations = o.revocations && runRevocationPoll(o.client, o.revocations, { intervalMs: o.revocationPollIntervalMs, log, signal: stop.signal });
  log.info('control plane link started', { assigned: assignments.list().length });
  return {
    assignments,
    sendHeartbeat,
    async close() {
      stop.abort();
      await Promise.all([commands, heartbeats, revocations]);
    },
  };
}
