/** Pre and post actions of a plan group: shell scripts run in order, each within its timeout. */
import { spawn } from 'node:child_process';
import type { PlanActionSpec } from '../../core/control-plane/protocol.ts';

const OUTPUT_TAIL_BYTES = 2048;

/** Runs the actions one after the other; rejects with the first that fails or times out. */
export async function runActions(actions: PlanActionSpec[], env: Record<string, string>, signal: AbortSignal): Promise<string[]> {
  const done: string[] = [];
  for (const a of actions) {
    const output = await runAction(a, env, signal);
    done.push(`action ${a.name} passed${output ? `: ${output}` : ''}`);
  }
  return done;
}

function runAction(a: PlanActionSpec, env: Record<string, string>, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', a.script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], signal });
    let tail = '';
    const keep = (b: Buffer) => { tail = (tail + b.toString()).slice(-OUTPUT_TAIL_BYTES); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), a.timeoutSeconds * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`action ${a.name} could not run: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(tail.trim());
      else if (sig === 'SIGKILL') reject(new Error(`action ${a.name} timed out after ${a.timeoutSeconds} s`));
      else reject(new Error(`action ${a.name} failed (${sig ?? `exit ${code}`})${tail.trim() ? `: ${tail.trim()}` : ''}`));
    });
  });
}
