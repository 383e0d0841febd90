/**
 * podman for the container tests: a private store under one directory, and the settings these
 * machines need (scripts/containers/containers.conf), so nothing touches the host's own images.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../helpers/tidemark-process.ts';

export const CONTAINERS_CONF = join(REPO, 'scripts', 'containers', 'containers.conf');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: o.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, CONTAINERS_CONF, ...o.env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

export class Podman {
  constructor(readonly root: string) {}

  get globalArgs(): string[] {
    return ['--root', join(this.root, 'storage'), '--runroot', join(this.root, 'run')];
  }

  run(args: string[], timeoutMs?: number): Promise<Result> {
    return run('podman', [...this.globalArgs, ...args], { timeoutMs });
  }

  /** Runs and insists on success; returns stdout trimmed. */
  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().slice(-2000)}`);
    return r.stdout.trim();
  }
}

/** Why the container tests cannot run here, or undefined when they can. */
export async function unavailable(): Promise<string | undefined> {
  if ((await run('podman', ['--version'])).code !== 0) return 'podman is not installed (Debian packages podman buildah runc uidmap; .ci/run installs them)';
  if (process.getuid?.() !== 0) return 'the container tests run podman as root (a private store, host networking); this user is not root';
  return undefined;
}
