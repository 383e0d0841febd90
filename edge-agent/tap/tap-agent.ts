/**
 * The edge agent in tap mode: serves each disk over NBD to its consumer, records every write
 * in order, and streams the change log to the process server. Every acknowledged write
 * boundary becomes a recovery point once the initial sync is complete.
 */
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { loadHashing } from '../../core/hash.ts';
import { checkName, diskName } from '../../core/names.ts';
import { createLogger, type Logger } from '../../core/log.ts';
import { createNbdServer, fixedExports, type NbdServer } from '../../core/nbd/index.ts';
import { openDisk } from '../disk-source.ts';
import { Uploader, sleep } from '../uploader.ts';
import { heartbeatLoop } from '../heartbeat.ts';
import { freeze, type FreezeHooks } from '../hooks.ts';
import { TapDisk } from './tap-disk.ts';
import { LogUploader } from './log-uploader.ts';
import { HashResync } from './hash-resync.ts';
import { loadTapState, newTapState, saveTapState, currentBootId, type TapState } from './tap-state.ts';
import { Mutex } from '../../core/mutex.ts';

/** Default bound of each disk's change log. */
export const DEFAULT_MAX_LOG_BYTES = 1024 * 1024 * 1024;
/** The acknowledged position is saved at most this often. */
const ACK_SAVE_INTERVAL_MS = 1000;
/** The initial sync's cursor is saved after this many steps. */
const CURSOR_SAVE_STEPS = 64;

export interface TapAgentOptions {
  machine: string;
  disks: string[];
  stateDir: string;
  processServerUrl: string;
  token?: string;
  /** For an https:// process server: this agent's certificate and the vault CA (mutual TLS). */
  tls?: TlsIdentity;
  nbdHost: string;
  nbdPort: number;
  maxLogBytes: number;
  /** LZ4 batches where it pays (default off: the process server compresses for the WAN). */
  compress?: boolean;
  /** Freeze and thaw around an app-consistent point every `appConsistentIntervalSeconds`. */
  hooks?: FreezeHooks;
  appConsistentIntervalSeconds?: number;
  log?: Logger;
  signal: AbortSignal;
  /** Called once the NBD server listens. */
  onListening?: (address: { host: string; port: number }) => void;
  onProgress?: (disk: string, phase: string, doneBytes: number, totalBytes: number) => void;
}

async function openTapDisk(o: TapAgentOptions, index: number, log: Logger): Promise<TapDisk> {
  const name = diskName(index);
  const dir = join(o.stateDir, name);
  await mkdir(dir, { recursive: true });
  const src = await openDisk(o.disks[index]);
  const sizeBytes = src.sizeBytes;
  await src.fh.close();
  const bootId = currentBootId();
  let state = loadTapState(dir);
  let hostCrashed = false;
  if (state && state.diskBytes !== sizeBytes) {
    log.warn('disk size changed: starting over with a full sync', { disk: name, wasBytes: state.diskBytes, nowBytes: sizeBytes });
    state = { ...newTapState(o.disks[index], sizeBytes, bootId), ackedNextSeq: state.ackedNextSeq, initialSync: { done: false, cursorBlock: 0, sendZeros: true } };
  } else if (state) {
    hostCrashed = state.bootId !== bootId && !state.cleanShutdown;
  }
  state ??= newTapState(o.disks[index], sizeBytes, bootId);
  state.path = o.disks[index];
  const disk = await TapDisk.open({ machine: o.machine, disk: name, path: o.disks[index], stateDir: o.stateDir, maxLogBytes: o.maxLogBytes, state, log });
  if (hostCrashed) {
    log.warn('the host restarted without stopping the agent: writes that were never flushed may be missing from the log; comparing the whole disk with the replica', { disk: name });
    disk.distrustUnflushedHeld();
    disk.markAllDirty();
  }
  state.bootId = bootId;
  state.cleanShutdown = false;
  await saveTapState(dir, state);
  return disk;
}

/**
 * Every interval: freeze (the consumer's file systems or applications quiesce), tag an
 * app-consistent point on every consistent disk in one synchronous step, thaw.
 */
async function appConsistentLoop(disks: TapDisk[], o: TapAgentOptions, log: Logger): Promise<void> {
  const every = o.appConsistentIntervalSeconds;
  if (!every || !o.hooks?.freezeCmd) return;
  while (!o.signal.aborted) {
    await sleep(every * 1000, o.signal).catch(() => undefined);
    if (o.signal.aborted) return;
    const { frozen, thaw } = await freeze(o.hooks, { TIDEMARK_MACHINE: o.machine }, log);
    try {
      if (!frozen) continue;
      const seqs = disks.filter((d) => d.consistent).map((d) => ({ disk: d.name, seq: d.tag('app') }));
      log.info('app-consistent point tagged', { points: seqs });
    } finally {
      await thaw();
    }
  }
}

/** Saves one disk's state, one save at a time (the uploader and the sync loop both save it). */
function stateSaver(dir: string, state: TapState): () => Promise<void> {
  const lock = new Mutex();
  return () => lock.run(() => saveTapState(dir, state));
}

/** Runs the initial sync and resyncs of one disk, yielding between synchronous steps. */
async function syncLoop(disk: TapDisk, lu: LogUploader, resync: HashResync, o: TapAgentOptions, save: () => Promise<void>): Promise<void> {
  let steps = 0;
  while (!o.signal.aborted) {
    const s = disk.state;
    if (lu.serverNextSeq === undefined) {
      await sleep(100, o.signal).catch(() => undefined);
      continue;
    }
    let progressed = false;
    if (!s.initialSync.done) {
      const was = s.initialSync.done;
      // In its turn among the consumer's writes, so that none is half done under its reads.
      progressed = await disk.inTurn(() => disk.initialSyncStep());
      if (progressed) {
        o.onProgress?.(disk.name, 'INITIAL_SYNC', disk.syncedBytes, disk.sizeBytes);
        if (++steps % CURSOR_SAVE_STEPS === 0 || s.initialSync.done !== was) {
          disk.changeLog.syncDataSync();
          await save();
        }
      }
    } else if (s.bitmapMode) {
      progressed = await resync.step();
      if (progressed) o.onProgress?.(disk.name, 'RESYNC', 0, disk.dirtyBytes);
    }
    if (!progressed) await sleep(s.initialSync.done && !s.bitmapMode ? 200 : 20, o.signal).catch(() => undefined);
    else await new Promise((r) => setImmediate(r));
  }
}

export async function runTapAgent(o: TapAgentOptions): Promise<void> {
  await loadHashing();
  checkName('machine', o.machine);
  const log = o.log ?? createLogger('agent', {}, { machine: o.machine });
  const disks: TapDisk[] = [];
  for (let i = 0; i < o.disks.length; i++) disks.push(await openTapDisk(o, i, log));
  const nbd: NbdServer = createNbdServer({ exports: fixedExports(disks) });
  const address = await nbd.listen(o.nbdHost, o.nbdPort);
  log.info('serving disks over NBD', { address: `${address.host}:${address.port}`, disks: disks.map((d) => d.name) });
  o.onListening?.(address);

  const loops: Promise<void>[] = [];
  for (const disk of disks) {
    const save = stateSaver(join(o.stateDir, disk.name), disk.state);
    let lastAckSaveMs = 0;
    const dlog = log.child({ disk: disk.name });
    const uploader = new Uploader({ processServerUrl: o.processServerUrl, token: o.token, tls: o.tls, machine: o.machine, disk: disk.name, log: dlog, signal: o.signal });
    const lu = new LogUploader({
      disk, uploader, log: dlog, signal: o.signal, compress: o.compress,
      onAck: async (next) => {
        disk.state.ackedNextSeq = next;
        // The saved position is only a floor for starting while the process server is away
        // (it is re-read from the server on every connect), so once a second is enough.
        const now = Date.now();
        if (now - lastAckSaveMs >= ACK_SAVE_INTERVAL_MS) {
          lastAckSaveMs = now;
          await save();
        }
      },
    });
    disk.onAppend = () => lu.wake();
    const resync = new HashResync({
      disk, processServerUrl: o.processServerUrl, token: o.token, machine: o.machine, serverNextSeq: () => lu.serverNextSeq, save, log: dlog, signal: o.signal,
    });
    loops.push(lu.run(), syncLoop(disk, lu, resync, o, save));
  }
  loops.push(appConsistentLoop(disks, o, log));
  loops.push(heartbeatLoop(o, {
    report: () => disks.map((d) => ({
      disk: d.name, phase: d.phase, totalBytes: d.sizeBytes,
      doneBytes: d.syncedBytes,
    })),
    // One synchronous step tags every disk, so the bookmark is the same moment on all of them.
    bookmark: async (ask) => disks.map((d) => {
      try {
        return { id: ask.id, disk: d.name, seq: d.bookmark(ask.name) };
      } catch (e) {
        return { id: ask.id, disk: d.name, error: (e as Error).message };
      }
    }),
  }));
  try {
    await Promise.all(loops);
  } catch (e) {
    if (!o.signal.aborted) throw e;
  } finally {
    await nbd.close();
    for (const d of disks) {
      await d.flush().catch(() => undefined);
      d.state.cleanShutdown = true;
      await saveTapState(join(o.stateDir, d.name), d.state).catch(() => undefined);
      d.close();
    }
  }
}
