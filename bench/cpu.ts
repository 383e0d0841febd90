/** CPU time of a child process, for benchmark rows that noise from other work barely moves. */
import { readFile } from 'node:fs/promises';

/** User and system CPU seconds a process has used so far (Linux /proc; clock ticks are 100 Hz). */
export async function cpuTimes(pid: number | undefined): Promise<{ userSeconds: number; systemSeconds: number }> {
  if (!pid) return { userSeconds: NaN, systemSeconds: NaN };
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { userSeconds: Number(fields[11]) / 100, systemSeconds: Number(fields[12]) / 100 };
}

/** User + system CPU seconds a process has used so far. */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  const t = await cpuTimes(pid);
  return t.userSeconds + t.systemSeconds;
}
