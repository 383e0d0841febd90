/**
 * The edge agent in scan mode: one DiskAgent per disk, plus a heartbeat that tells the
 * process server each disk's phase and progress.
 */
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { loadHashing } from '../core/hash.ts';
import { diskName, checkName } from '../core/names.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { DiskAgent, type DiskEvent } from './disk-agent.ts';
import type { FreezeHooks } from './hooks.ts';
import { heartbeatLoop } from './heartbeat.ts';
import { ScanThreads } from './scan-threads.ts';

export interface AgentOptions {
  machine: string;
  disks: string[];
  stateDir: string;
  processServerUrl: string;
  token?: string;
  /** For an https:// process server: this agent's certificate and the vault CA (mutual TLS). */
  tls?: TlsIdentity;
  intervalSeconds: number;
  hooks: FreezeHooks;
  /** LZ4 batches where it pays (default off: the process server compresses for the WAN). */
  compress?: boolean;
  log?: Logger;
  onEvent?: (e: DiskEvent) => void;
  signal: AbortSignal;
}

/** Protects the disks until the signal aborts; rejects if a disk fails for good. */
export async function runAgent(o: AgentOptions): Promise<void> {
  await loadHashing();
  checkName('machine', o.machine);
  const log = o.log ?? createLogger('agent', {}, { machine: o.machine });
  const threads = new ScanThreads();
  const disks = o.disks.map((path, i) => new DiskAgent({
    machine: o.machine, disk: diskName(i), path, stateDir: o.stateDir, processServerUrl: o.processServerUrl, token: o.token, tls: o.tls,
    intervalSeconds: o.intervalSeconds, hooks: o.hooks, threads, compress: o.compress, log, signal: o.signal, onEvent: o.onEvent,
  }));
  // The heartbeat stops with the disks: a disk that fails for good ends the agent (and its service restarts it).
  const disksDone = new AbortController();
  const heartbeat = heartbeatLoop({ ...o, signal: AbortSignal.any([o.signal, disksDone.signal]) }, {
    report: () => disks.map((d, i) => ({ disk: diskName(i), phase: d.phase, doneBytes: d.doneBytes, totalBytes: d.totalBytes, intervalSeconds: o.intervalSeconds })),
    bookmark: (ask) => Promise.all(disks.map(async (d, i) => {
      try {
        return { id: ask.id, disk: diskName(i), seq: await d.bookmark(ask.name) };
      } catch (e) {
        return { id: ask.id, disk: diskName(i), error: (e as Error).message };
      }
    })),
  });
  try {
    await Promise.all(disks.map((d) => d.run()));
  } catch (e) {
    if (!o.signal.aborted) throw e;
  } finally {
    disksDone.abort();
    await heartbeat;
    await threads.close();
  }
}

