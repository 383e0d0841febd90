/** Freeze and thaw commands run around a scan (fsfreeze, an LVM snapshot, a database flush). */
import { spawn } from 'node:child_process';
import type { Logger } from '../core/log.ts';

export interface HookResult {
  ok: boolean;
  code: number | null;
  output: string;
}

/** Runs `command` through `sh -c`, with a timeout; never throws. */
export function runHook(command: string, env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const take = (b: Buffer) => {
      if (output.length < 4096) output += b.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, code: null, output: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, code, output: output.trim() });
    });
  });
}

export interface FreezeHooks {
  freezeCmd?: string;
  thawCmd?: string;
  timeoutMs: number;
}

/** Freezes; returns whether the scan that follows is application-consistent and a thaw function. */
export async function freeze(h: FreezeHooks, env: Record<string, string>, log: Logger): Promise<{ frozen: boolean; thaw: () => Promise<void> }> {
  let thawed = false;
  const thaw = async () => {
    if (thawed || !h.thawCmd) return;
    thawed = true;
    const r = await runHook(h.thawCmd, env, h.timeoutMs);
    if (!r.ok) log.error('thaw command failed', { code: r.code, output: r.output });
  };
  if (!h.freezeCmd) return { frozen: false, thaw };
  const r = await runHook(h.freezeCmd, env, h.timeoutMs);
  if (!r.ok) {
    log.warn('freeze command failed; this scan gives a crash-consistent point only', { code: r.code, output: r.output });
    await thaw();
    return { frozen: false, thaw };
  }
  return { frozen: true, thaw };
}
