/**
 * Tells the process server, every few seconds, each disk's phase and progress; takes the
 * bookmarks operators asked for in the answer, and reports the points tagged for them.
 */
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
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

export interface BookmarkAsk {
  id: string;
  name: string;
}

export interface BookmarkResult {
  id: string;
  disk: string;
  seq?: number;
  error?: string;
}

export interface HeartbeatHandlers {
  report(): DiskReport[];
  /** Tags a bookmark on every disk; resolves with one result per disk. */
  bookmark?(ask: BookmarkAsk): Promise<BookmarkResult[]>;
}

export async function heartbeatLoop(o: { processServerUrl: string; token?: string; tls?: TlsIdentity; machine: string; signal: AbortSignal }, h: HeartbeatHandlers): Promise<void> {
  const seen = new Set<string>();
  let results: BookmarkResult[] = [];
  let nudge: (() => void) | undefined;
  while (!o.signal.aborted) {
    const sending = results;
    results = [];
    const r = await requestJson<{ bookmarks?: BookmarkAsk[] }>(o.processServerUrl, 'POST', `/v1/agents/${o.machine}/heartbeat`,
      { disks: h.report(), ...(sending.length ? { bookmarks: sending } : {}) }, { token: o.token, tls: o.tls, timeoutMs: 10_000, signal: o.signal }).catch(() => undefined);
    if (!r || r.status !== 200) results.unshift(...sending);
    for (const ask of r?.status === 200 ? r.body.bookmarks ?? [] : []) {
      if (seen.has(ask.id) || !h.bookmark) continue;
      seen.add(ask.id);
      void h.bookmark(ask).then((done) => {
        results.push(...done);
        nudge?.();
      });
    }
    await new Promise<void>((resolve) => {
      nudge = resolve;
      sleep(HEARTBEAT_INTERVAL_MS, o.signal).then(resolve, resolve);
    });
    nudge = undefined;
  }
}
