/** Human-readable live output of an agent's disks: progress at most once a second, and each scan. */
import type { DiskEvent } from '../../edge-agent/disk-agent.ts';

const MiB = 1024 * 1024;

export function progressPrinter(write: (s: string) => void = (s) => process.stdout.write(s)): (e: DiskEvent) => void {
  const last = new Map<string, { at: number; bytes: number; started: number }>();
  return (e) => {
    const now = Date.now();
    if (e.type === 'progress') {
      if (e.phase === 'CONTINUOUS') return;
      const seen = last.get(e.disk) ?? { at: 0, bytes: 0, started: now };
      if (!last.has(e.disk)) last.set(e.disk, seen);
      if (now - seen.at < 1000 && e.doneBytes < e.totalBytes) return;
      const seconds = Math.max(0.001, (now - seen.started) / 1000);
      const pct = e.totalBytes ? Math.floor((100 * e.doneBytes) / e.totalBytes) : 100;
      write(`${e.disk}: ${e.phase === 'RESYNC' ? 'resync' : 'initial sync'} ${String(pct).padStart(3)}%  ${(e.doneBytes / MiB).toFixed(0)} of ${(e.totalBytes / MiB).toFixed(0)} MiB  ${((e.doneBytes - 0) / MiB / seconds).toFixed(0)} MiB/s\n`);
      seen.at = now;
      return;
    }
    last.delete(e.disk);
    const r = e.result;
    const what = e.kind === 'rescan' ? 'scan' : e.kind === 'resync' ? 'resync' : 'initial sync';
    const point = r.pointSeq !== undefined ? `, recovery point ${r.pointSeq} (${e.consistent ? 'app-consistent' : 'crash-consistent'})` : '';
    write(`${e.disk}: ${what} done in ${e.seconds.toFixed(2)} s: ${r.changedBlocks} changed blocks, ${(r.sentBytes / MiB).toFixed(1)} MiB sent${point}\n`);
  };
}
