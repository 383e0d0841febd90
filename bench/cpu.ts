/** CPU time of a child process, for benchmark rows that noise from other work barely moves. */
import { readFile } from 'node:fs/promises';

/** User + system CPU seconds a process has used so far (Linux /proc; clock ticks are 100 Hz). */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
