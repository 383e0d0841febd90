/**
 * Replication lag of tap mode: writes at a steady rate through the agent's NBD export; for
 * each write, the time from its acknowledgement at the agent to the moment the master target
 * reports it applied (its stream position passing the write's sequence number).
 */
import { NbdWriter } from './nbd-writer.ts';
import { seededRandom, randomBuffer } from '../../cli/demo/sample-disk.ts';

export interface LagResult {
  targetMBps: number;
  achievedMBps: number;
  writes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function measureLag(o: {
  nbdHost: string; nbdPort: number; mtUrl: string; machine: string; token?: string;
  rateMBps: number; seconds: number; writeBytes: number; maxInFlight: number;
}): Promise<LagResult> {
  const headers: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  const position = async () => {
    const r = await fetch(`${o.mtUrl}/v1/streams/${o.machine}/disk0`, { headers });
    return ((await r.json()) as { nextSeq: number }).nextSeq;
  };
  const writer = await NbdWriter.connect(o.nbdHost, o.nbdPort, 'disk0');
  const rand = seededRandom(o.rateMBps);
  const data = Array.from({ length: 16 }, () => randomBuffer(rand, o.writeBytes));
  const blocks = Math.floor(writer.sizeBytes / o.writeBytes);
  const startSeq = await position();
  const ackedAt: number[] = [];
  const appliedAt: number[] = [];
  let stop = false;
  // Poll the master target's position and stamp every write it covers.
  const poller = (async () => {
    let covered = 0;
    while (!stop || covered < ackedAt.length) {
      const applied = (await position()) - startSeq;
      const now = performance.now();
      for (; covered < applied && covered < ackedAt.length; covered++) appliedAt[covered] = now;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const intervalMs = (o.writeBytes / (o.rateMBps * 1e6)) * 1000;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  let i = 0;
  while (performance.now() - t0 < o.seconds * 1000) {
    const due = t0 + i * intervalMs;
    const now = performance.now();
    if (now < due) await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
    if (writer.inFlight >= o.maxInFlight) {
      await Promise.race(pending.slice(-o.maxInFlight));
      continue;
    }
    const index = i++;
    pending.push(writer.write(Math.floor(rand() * blocks) * o.writeBytes, data[index % data.length]).then(() => {
      ackedAt[index] = performance.now();
    }));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await poller;
  await writer.close();
  const lags = ackedAt.map((a, k) => Math.max(0, appliedAt[k] - a)).sort((x, y) => x - y);
  return {
    targetMBps: o.rateMBps,
    achievedMBps: (i * o.writeBytes) / 1e6 / elapsed,
    writes: i,
    p50Ms: percentile(lags, 50),
    p99Ms: percentile(lags, 99),
    maxMs: lags[lags.length - 1],
  };
}
