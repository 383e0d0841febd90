/** Debian's NBD clients, run as a user would. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function qemuIo(uri: string, ...commands: string[]): Promise<string> {
  return qemuIoWith([], uri, ...commands);
}

/** qemu-io with options before the image, e.g. `['-t', 'unsafe']` (flushes are never sent). */
export async function qemuIoWith(options: string[], uri: string, ...commands: string[]): Promise<string> {
  const args = [...options, '-f', 'raw', uri];
  for (const c of commands) args.push('-c', c);
  const { stdout } = await run('qemu-io', args, { maxBuffer: 16 * 1024 * 1024 });
  if (/error|failed/i.test(stdout)) throw new Error(`qemu-io ${commands.join('; ')}: ${stdout}`);
  return stdout;
}

export async function nbdcopy(from: string, to: string, ...flags: string[]): Promise<void> {
  await run('nbdcopy', [...flags, from, to], { maxBuffer: 1024 * 1024 });
}

export async function nbdinfo(...args: string[]): Promise<string> {
  const { stdout } = await run('nbdinfo', args, { maxBuffer: 1024 * 1024 });
  return stdout;
}
