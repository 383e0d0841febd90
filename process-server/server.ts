/** Starts a process server: spool, shipping loops and the HTTP API. */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { loadHashing } from '../core/hash.ts';
import { serve, type Listening } from '../core/http/serve.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { Streams } from './streams.ts';
import { BookmarkBook } from './bookmarks.ts';
import { PushInstaller } from './push-install/push-installer.ts';
import { DEFAULT_AGENT_DIR } from './push-install/agent-files.ts';
import { processServerApp } from './http.ts';
import { ControlPlaneClient } from '../core/control-plane/client.ts';
import { agentAuthenticator } from './site-link/agent-auth.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import type { RevocationList } from '../core/tls/revocation-list.ts';
import { startProcessServerSiteLink, type ProcessServerSiteLink } from './site-link/site-link.ts';
import { WanLink, type WanOptions } from './wan/wan-link.ts';
import type { MasterTargetLink } from './stream.ts';

/** Default limit of pending (not yet applied) bytes per stream. */
export const DEFAULT_MAX_SPOOL_BYTES = 8 * 1024 * 1024 * 1024;

export interface ProcessServerOptions {
  dataDir: string;
  host: string;
  port: number;
  masterTargetUrl: string;
  token?: string;
  /** Token for the master target, when it differs from `token`. */
  masterTargetToken?: string;
  maxSpoolBytes?: number;
  /** Where the agent bundle and install.sh for push installs are. @default DEFAULT_AGENT_DIR (dist/agent of the checkout) */
  agentDir?: string;
  /** Bandwidth schedule, whole-spool limit and optimisation of the WAN link (docs/wan-optimisation.md). */
  wan?: WanOptions;
  log?: Logger;
  /**
   * Serve HTTPS with this certificate (mutual TLS, only its CA trusted) and present it to an
   * https:// master target. Agents and operators of `vaultId` are then known by their
   * certificates (docs/security.md).
   */
  tls?: { identity: TlsIdentity; vaultId: string };
  /**
   * With `tls`: the vault's revoked certificates, refused as clients; with `controlPlane` the
   * site link keeps the list fresh.
   */
  revocations?: RevocationList;
  /** Certificate to present to an https:// master target without serving HTTPS itself. @default tls.identity */
  masterTargetTls?: TlsIdentity;
  /**
   * The control plane this process server is enrolled with: it then polls its commands,
   * sends heartbeats, and accepts agents by their own credentials (besides `token`).
   */
  controlPlane?: {
    url: string;
    credential: string;
    /** @default 5000 */
    heartbeatIntervalMs?: number;
    softwareVersion?: string;
    /** How often the revocation list is fetched. @default DEFAULT_REVOCATION_POLL_INTERVAL_MS */
    revocationPollIntervalMs?: number;
  };
}

export interface ProcessServer extends Listening {
  streams: Streams;
  wan: WanLink;
  /** Present with `controlPlane`. */
  siteLink?: ProcessServerSiteLink;
}

export async function startProcessServer(o: ProcessServerOptions): Promise<ProcessServer> {
  await loadHashing();
  const log = o.log ?? createLogger('process-server');
  const spoolDir = join(o.dataDir, 'spool');
  await mkdir(spoolDir, { recursive: true });
  const link: MasterTargetLink = { url: o.masterTargetUrl, token: o.masterTargetToken ?? o.token, tls: o.tls?.identity ?? o.masterTargetTls };
  const streams = new Streams(spoolDir, link, log);
  let onSpoolLevel: WanOptions['onSpoolLevel'] = () => {};
  const wan = new WanLink({
    ...o.wan,
    onSpoolLevel: (st, previous) => {
      (st.level === 'ok' ? log.info : log.warn).call(log, 'spool level changed', { level: st.level, previous, usedBytes: st.usedBytes, limitBytes: st.limitBytes });
      o.wan?.onSpoolLevel?.(st, previous);
      onSpoolLevel?.(st, previous);
    },
  }, () => streams.all());
  link.wan = wan;
  await streams.openExisting();
  const client = o.controlPlane ? new ControlPlaneClient({ url: o.controlPlane.url, credential: o.controlPlane.credential }) : undefined;
  const bookmarks = new BookmarkBook();
  let siteLink: ProcessServerSiteLink | undefined;
  // An agent's certificate counts while its machine is assigned here (known once the link runs).
  const isAssigned = (machineId: string) => siteLink?.assignments.list().some((a) => a.machine.id === machineId) ?? false;
  const peers = o.tls && { vaultId: o.tls.vaultId, ...(client ? { isAssigned } : {}) };
  const pushInstaller = new PushInstaller({ agentDir: o.agentDir ?? DEFAULT_AGENT_DIR, knownHostsFile: join(o.dataDir, 'push-install', 'known_hosts'), log });
  const app = processServerApp({
    streams, token: o.token, agentAuth: client && agentAuthenticator(client), peers, revocations: o.revocations, maxSpoolBytes: o.maxSpoolBytes ?? DEFAULT_MAX_SPOOL_BYTES, bookmarks, log, wan, pushInstaller,
  });
  const listening = await serve(app, { host: o.host, port: o.port }, { tls: o.tls?.identity });
  siteLink = client && await startProcessServerSiteLink({
    client, streams, bookmarks, dir: join(o.dataDir, 'site-link'), log, masterTargetUrl: o.masterTargetUrl,
    heartbeatIntervalMs: o.controlPlane!.heartbeatIntervalMs, softwareVersion: o.controlPlane!.softwareVersion,
    spool: () => wan.budget.status(),
    revocations: o.revocations, revocationPollIntervalMs: o.controlPlane!.revocationPollIntervalMs,
  });
  if (siteLink) {
    wan.machineRate = (machine) => siteLink.assignments.byMachineName(machine)?.policy.bandwidthLimitBytesPerSecond ?? undefined;
    onSpoolLevel = () => void siteLink.sendHeartbeat().catch((err: unknown) => log.warn('spool level not reported to the control plane', { error: err as Error }));
  }
  log.info('process server listening', { url: listening.url, masterTarget: o.masterTargetUrl, streams: streams.all().length, controlPlane: o.controlPlane?.url });
  return {
    ...listening,
    streams,
    wan,
    siteLink,
    async close() {
      await siteLink?.close();
      await pushInstaller.close();
      await listening.close();
      await streams.close();
    },
  };
}
