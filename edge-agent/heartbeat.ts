/** Tells the process server, every few seconds, each disk's phase and progress. */
import { requestJson } from '../core/http/client.ts';
import { sleep } from './uploader.ts';

export const HEARTBEAT_INTERVAL_MS = 5_000;

export interface DiskReport {
  disk: string;
  phase: 'INITIAL_SYNC' | 'CONTINUOUS' | 'RESYNC';
  doneBytes: number;
  totalBytes: number;
  intervalSeconds?: number;
}

export async function heartbeatLoop(o: { processServerUrl: string; token?: string; machine: string; signal: AbortSignal }, report: () => DiskReport[]): Promise<void> {
  while (!o.signal.aborted) {
    await requestJson(o.processServerUrl, 'POST', `/v1/agents/${o.machine}/heartbeat`, { disks: report() }, { token: o.token, timeoutMs: 10_000, signal: o.signal }).catch(() => undefined);
    await sleep(HEARTBEAT_INTERVAL_MS, o.signal).catch(() => undefined);
  }
}
