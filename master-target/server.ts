/**
 * Starting a master target: open the data directory (recovering every stream), serve the
 * HTTP API, and run retention in the background. Signals are the caller's business.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { createNbdServer, type NbdServer } from '../core/nbd/index.ts';
import { loadHashing } from '../core/hash.ts';
import { serve } from '../core/http/serve.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { createApp } from './http.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import type { MasterTargetPeers } from './peer-access.ts';
import type { RevocationList } from '../core/tls/revocation-list.ts';
import { DEFAULT_SEGMENT_BYTES, Retainer, retentionIntervalMs, segmentMaxAgeMs } from './retention.ts';
import { DEFAULT_RETENTION_FULL_SECONDS, type TierPolicy } from './retention-tiers.ts';
import { StreamStore } from './store.ts';
import { DEFAULT_KEEP_FREE_BYTES, SpaceLimits } from './space-limits.ts';
import type { HypervisorAdapter } from './hypervisor/adapter.ts';
import { createQemuAdapter } from './hypervisor/qemu.ts';
import { FailoverManager } from './views/failover.ts';
import { DEFAULT_SCRATCH_BYTES, ViewManager } from './views/view-manager.ts';

export interface MasterTargetOptions {
  /** Where replicas and journals live (created if missing). */
  dataDir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Bearer token every request but /healthz must carry; none means no check. */
  token?: string;
  /** Serve HTTPS with this certificate, trusting only its CA for client certificates. */
  tls?: TlsIdentity;
  /** With `tls`: who may do what, by client certificate (`peer-access.ts`). */
  peers?: MasterTargetPeers;
  /** With `tls`: the vault's revoked certificates, refused as clients (kept fresh by the site link). */
  revocations?: RevocationList;
  /** How far back recovery points reach. */
  retentionSeconds: number;
  log?: Logger;
  /** Segment rollover size. @default 64 MiB */
  segmentBytes?: number;
  /** Segment rollover age. @default an eighth of the window, 1 s to 1 h */
  segmentMaxAgeMs?: number;
  /** How often retention runs. @default a tenth of the window, 1 s to 1 min */
  retentionIntervalMs?: number;
  /** Clock for the retention window (tests). @default Date.now */
  now?: () => number;
  /** Every point is kept this long, then one a minute up to 24 h, then one an hour. @default 1 h */
  retentionFullSeconds?: number;
  /** Serve point-in-time views over NBD on this address (port 0 picks one). */
  nbd?: { host: string; port: number };
  /**
   * Free space kept on the data directory's file system by deleting the oldest journal
   * segments, inside the window if need be; 0 never deletes for space. @default 2 GiB
   */
  keepFreeBytes?: number;
  /** Cap on all journals together, kept the same way. @default none */
  journalMaxBytes?: number;
  /** Bound of each writable view's scratch overlay. @default 1 GiB */
  scratchBytes?: number;
  /** The hypervisor for `failover --test --boot`. @default QEMU, state under DIR/machines */
  hypervisor?: () => Promise<HypervisorAdapter>;
}

export interface MasterTarget {
  url: string;
  port: number;
  /** Where views are served, when `nbd` was given. */
  nbd?: { host: string; port: number };
  close(): Promise<void>;
}

/** The master target without a listener: its Hono app and its parts (tests use `app.request`). */
export interface MasterTargetApp {
  app: Hono;
  store: StreamStore;
  retainer: Retainer;
  space: SpaceLimits;
  views: ViewManager;
  failover: FailoverManager;
  /** Where views are served, when `nbd` was given. */
  nbd?: { host: string; port: number };
  close(): Promise<void>;
}

/** Opens the data directory and builds the app; retention runs until `close()`. */
export async function openMasterTarget(opts: Omit<MasterTargetOptions, 'host' | 'port'>): Promise<MasterTargetApp> {
  await loadHashing();
  const log = opts.log ?? createLogger('master-target');
  await mkdir(opts.dataDir, { recursive: true });
  const tiers: TierPolicy = { fullSeconds: opts.retentionFullSeconds ?? DEFAULT_RETENTION_FULL_SECONDS };
  const retainer = new Retainer(opts.retentionSeconds, opts.now ?? Date.now, log, tiers);
  const store = await StreamStore.open(
    opts.dataDir,
    {
      segmentBytes: opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
      segmentMaxAgeMs: opts.segmentMaxAgeMs ?? segmentMaxAgeMs(opts.retentionSeconds),
      onRollover: (s) => void retainer.retain(s),
    },
    log,
  );
  await retainer.runOnce(store, false);
  const space = new SpaceLimits(store, { dataDir: opts.dataDir, keepFreeBytes: opts.keepFreeBytes ?? DEFAULT_KEEP_FREE_BYTES, journalMaxBytes: opts.journalMaxBytes, log });
  // Journals grow only by applied batches, and each apply checks first; this pass is for limits lowered since the last run.
  await space.enforce();
  retainer.start(store, opts.retentionIntervalMs ?? retentionIntervalMs(opts.retentionSeconds));
  const now = opts.now ?? Date.now;
  // Scratch files live under tmp/, which the store emptied above: nothing of an earlier run's views remains.
  const views = new ViewManager({ scratchDir: join(store.tmpDir, 'views'), scratchBytes: opts.scratchBytes ?? DEFAULT_SCRATCH_BYTES, log });
  let hv: Promise<HypervisorAdapter> | undefined;
  const hypervisor = opts.hypervisor ?? (() => (hv ??= createQemuAdapter({ stateDir: join(opts.dataDir, 'machines'), log })));
  const failover = await FailoverManager.open({ dataDir: opts.dataDir, store, views, rules: { tiers, now }, hypervisor, log });
  let nbdServer: NbdServer | undefined;
  let nbd: { host: string; port: number } | undefined;
  if (opts.nbd) {
    nbdServer = createNbdServer({ exports: views.nbdSource() });
    try {
      nbd = await nbdServer.listen(opts.nbd.host, opts.nbd.port);
    } catch (err) {
      await retainer.stop();
      await store.close();
      throw err;
    }
    views.setAddress(nbd.host, nbd.port);
    log.info('views served over nbd', { host: nbd.host, port: nbd.port, scratchBytes: opts.scratchBytes ?? DEFAULT_SCRATCH_BYTES });
  }
  const app = createApp({ store, retainer, space, token: opts.token, peers: opts.peers, revocations: opts.revocations, log, views, failover, tiers, now });
  return {
    app,
    store,
    retainer,
    space,
    views,
    failover,
    ...(nbd ? { nbd } : {}),
    close: async () => {
      await nbdServer?.close();
      await failover.close();
      await views.closeAll();
      await retainer.stop();
      await store.close();
    },
  };
}

/**
 * Starts a master target on `host:port` and resolves once it listens.
 *
 * @example
 * const mt = await startMasterTarget({ dataDir: '/var/lib/tidemark', host: '0.0.0.0', port: 7402, retentionSeconds: 86400 });
 * // ... later
 * await mt.close();
 */
export async function startMasterTarget(opts: MasterTargetOptions): Promise<MasterTarget> {
  const log = opts.log ?? createLogger('master-target');
  const mt = await openMasterTarget({ ...opts, log });
  let listening;
  try {
    listening = await serve(mt.app, { host: opts.host, port: opts.port }, { tls: opts.tls });
  } catch (err) {
    await mt.close();
    throw err;
  }
  log.info('master target listening', { url: listening.url, dataDir: opts.dataDir, retentionSeconds: opts.retentionSeconds, keepFreeBytes: mt.space.o.keepFreeBytes, journalMaxBytes: mt.space.o.journalMaxBytes, auth: opts.peers ? 'tls' : opts.token ? 'token' : 'none' });
  return {
    url: listening.url,
    port: listening.port,
    ...(mt.nbd ? { nbd: mt.nbd } : {}),
    close: async () => {
      await listening.close();
      await mt.close();
    },
  };
}
