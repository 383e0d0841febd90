/**
 * Child processes that always end: a short command with a deadline (`runCommand`) and the
 * signals for a long-running machine's process group, which may belong to an earlier run.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { HypervisorError } from './errors.ts';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end or kills it (SIGKILL) after `timeoutMs`. Throws if it cannot be
 * started or times out; a non-zero exit is returned, not thrown.
 */
export function runCommand(program: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new HypervisorError(`cannot run ${program}`, { cause: err, hint: `install ${program} (Debian: qemu-utils, qemu-system-x86)` }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new HypervisorError(`${program} did not finish within ${timeoutMs} ms`, { hint: 'the host may be overloaded; retry' }));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

/** True if a process with this id exists (a zombie of ours counts until it is reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True if `pid` is still the process we started: its command line contains `token` (a path
 * unique to the machine). Guards against signalling a process that reused the id.
 */
export function isOurProcess(pid: number, token: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(token));
  } catch {
    return false;
  }
}

/** Sends a signal to a whole process group (the machine and its timeout wrapper). */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Resolves true once `check()` is false, or false after `timeoutMs`; polls every `stepMs`. */
export async function waitUntilGone(check: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (check()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return true;
}
