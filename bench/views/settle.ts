/**
 * Between two timed writes of a benchmark: flush everything, then wait until the kernel's
 * dirty and writeback pages drain, so that one run's writeback does not land in the next.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Dirty plus writeback bytes below which the machine counts as settled (other jobs write too). */
const SETTLED_BYTES = 64 * 1024 * 1024;
/** Longest wait for the dirty pages to drain after `sync`. */
const MAX_WAIT_MS = 10_000;
/** Quiet time after the drain, for the device's own cache. */
const PAUSE_MS = 2_000;

/** Dirty plus writeback bytes from /proc/meminfo (the whole machine's). */
export async function dirtyBytes(): Promise<number> {
  const text = await readFile('/proc/meminfo', 'utf8');
  let kib = 0;
  for (const m of text.matchAll(/^(Dirty|Writeback):\s+(\d+) kB$/gm)) kib += Number(m[2]);
  return kib * 1024;
}

/** `sync`, wait for the dirty pages to drain (at most MAX_WAIT_MS), then a short pause. */
export async function settle(): Promise<void> {
  await run('sync');
  const giveUpAt = Date.now() + MAX_WAIT_MS;
  while ((await dirtyBytes()) > SETTLED_BYTES && Date.now() < giveUpAt) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, PAUSE_MS));
}

/** The 1, 5 and 15 minute load averages, as printed beside every figure. */
export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}
