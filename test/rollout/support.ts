/** Shared by the rollout tests: the agent bundle built once per test file, and small process helpers. */
import { loadIdentityDir, type TlsIdentity } from '../../core/tls/tls-identity.ts';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { freeQuad } from '../helpers/ports.ts';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startTidemark, type Running } from '../helpers/tidemark-process.ts';
import { bundleAgent, type AgentBundle } from '../../scripts/bundle-agent.ts';

let built: Promise<AgentBundle & { dir: string; buildMs: number }> | undefined;

/** The bundle and install.sh, built into a temporary folder (the caller removes `dir`). */
export function agentBundle(): Promise<AgentBundle & { dir: string; buildMs: number }> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tidemark-bundle-'));
    const started = Date.now();
    const b = await bundleAgent(dir);
    return { ...b, dir, buildMs: Date.now() - started };
  })();
  return built;
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (stdin from `input`), with a time limit. */
export function run(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a process that stops early need not read its input
    child.stdin.end(o.input ?? '');
  });
}

export interface UpForTest {
  up: Running;
  cpUrl: string;
  psUrl: string;
  mtUrl: string;
  key: string;
  /** The operator certificate `up` made (its process server and master target speak mutual TLS). */
  operator: TlsIdentity;
  /** An admin call on the stack's vault: `api('GET', '/machines')`. */
  api(method: string, path: string, body?: unknown): Promise<any>;
}

/** `tidemark up` as a child process, with its registration key and an admin client. */
export async function startUp(dataDir: string): Promise<UpForTest> {
  const port = await freeQuad();
  const up = startTidemark(['up', '--data', dataDir, '--port', String(port)], { TIDEMARK_LOG_LEVEL: 'warn', TIDEMARK_TOKEN: '', XDG_CONFIG_HOME: join(dataDir, 'config') });
  await up.waitFor(/Stop with Ctrl-C/, 30_000);
  const adminToken = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const { vaultId } = JSON.parse(await readFile(join(dataDir, 'up.json'), 'utf8')) as { vaultId: string };
  const cpUrl = `http://127.0.0.1:${port}`;
  return {
    up, cpUrl, psUrl: `https://127.0.0.1:${port + 1}`, mtUrl: `https://127.0.0.1:${port + 2}`,
    key: up.stdout().match(/--key (\S+)/)![1]!,
    operator: (await loadIdentityDir(join(dataDir, 'operator')))!,
    async api(method, path, body) {
      const res = await fetch(`${cpUrl}/api/v1/vaults/${vaultId}${path}`, {
        method, headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = await res.json();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
  };
}

/** Every path under `dir` (relative, `d ` or `f ` and the mode), sorted: a root's picture to compare. */
export async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const path = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    const st = await stat(path);
    out.push(`${e.isDirectory() ? 'd' : 'f'} ${(st.mode & 0o7777).toString(8)} ${relative(dir, path)}`);
  }
  return out.sort();
}

/**
 * The command systemd would run for `unitPath`: its EnvironmentFile read and ExecStart expanded
 * as systemd does (`${X}` one word, `$X` split at white space). `reroot` maps an installed path
 * (under --root) to where it is.
 */
export async function unitCommand(unitPath: string, reroot: (p: string) => string): Promise<string[]> {
  const unit = await readFile(unitPath, 'utf8');
  const envFile = /^EnvironmentFile=(.+)$/m.exec(unit)![1]!;
  const env: Record<string, string> = {};
  for (const line of (await readFile(reroot(envFile), 'utf8')).split('\n')) {
    const m = /^([A-Z_]+)="((?:[^"\\]|\\.)*)"$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  }
  const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!;
  return exec.split(' ').flatMap((w) => {
    let m = /^\$\{([A-Z_]+)\}$/.exec(w);
    if (m) return [env[m[1]!] ?? ''];
    m = /^\$([A-Z_]+)$/.exec(w);
    if (m) return (env[m[1]!] ?? '').split(/\s+/).filter(Boolean);
    return [w];
  });
}
