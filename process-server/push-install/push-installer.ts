/**
 * Push installs: the process server copies the agent bundle and install.sh to a host over SSH
 * and runs the install there. Each push is a job kept in memory (the last 100), with its steps,
 * the remote output and the result; the private key lives only in a 0600 file during the push.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../../core/log.ts';
import { TidemarkError } from '../../core/errors.ts';
import { explainSshFailure, scpTo, shellQuote, sshRun, type SshTarget } from './ssh.ts';
import { installArguments, type PushInstallRequest } from './request.ts';
import { agentFiles, type AgentFiles } from './agent-files.ts';

export type StepName = 'connect' | 'copy' | 'install';
export type PushState = 'running' | 'succeeded' | 'failed';

export interface PushInstallJob {
  id: string;
  host: string;
  port: number;
  user: string;
  machine?: string;
  state: PushState;
  startedAt: string;
  endedAt?: string;
  steps: Array<{ name: StepName; state: PushState; startedAt: string; endedAt?: string }>;
  /** Remote output and progress, newest last (at most 500 lines). */
  log: string[];
  /** Lines logged in all, including those dropped from the front of `log`. */
  logLines: number;
  error?: string;
  hint?: string;
}

export class PushInstallUnavailableError extends TidemarkError {}

const KEPT_JOBS = 100;
const LOG_LINES = 500;

export interface PushInstallerOptions {
  /** Where tidemark-agent.mjs and install.sh are (npm run bundle-agent makes dist/agent). */
  agentDir: string;
  /** The process server's known_hosts file for pushes. */
  knownHostsFile: string;
  log: Logger;
}

export class PushInstaller {
  readonly #jobs = new Map<string, PushInstallJob>();
  readonly #running = new Set<Promise<void>>();
  readonly #abort = new AbortController();

  constructor(private readonly o: PushInstallerOptions) {}

  /** Checks that the agent files are there, then starts the push; resolves with its job at once. */
  async start(req: PushInstallRequest): Promise<PushInstallJob> {
    const files = await agentFiles(this.o.agentDir).catch((err: Error) => {
      throw new PushInstallUnavailableError(`the agent bundle is not on this process server: ${err.message}`, {
        hint: 'build it with npm run bundle-agent (dist/agent) or start the process server with --agent-dir DIR',
      });
    });
    const job: PushInstallJob = {
      id: `psh_${randomBytes(10).toString('hex')}`, host: req.host, port: req.port, user: req.user, machine: req.install.machine,
      state: 'running', startedAt: new Date().toISOString(), steps: [], log: [], logLines: 0,
    };
    this.#jobs.set(job.id, job);
    for (const id of [...this.#jobs.keys()].slice(0, Math.max(0, this.#jobs.size - KEPT_JOBS))) this.#jobs.delete(id);
    this.o.log.info('push install started', { id: job.id, host: req.host, port: req.port, user: req.user });
    const p = this.#run(job, req, files).finally(() => this.#running.delete(p));
    this.#running.add(p);
    return job;
  }

  get(id: string): PushInstallJob | undefined {
    return this.#jobs.get(id);
  }

  /** Stops running pushes (their ssh processes) and waits for them. */
  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#running]);
  }

  async #run(job: PushInstallJob, req: PushInstallRequest, files: AgentFiles): Promise<void> {
    const say = (line: string) => {
      job.log.push(line);
      job.logLines++;
      if (job.log.length > LOG_LINES) job.log.splice(0, job.log.length - LOG_LINES);
    };
    const tmp = await mkdtemp(join(tmpdir(), 'tidemark-push-'));
    let remoteDir: string | undefined;
    let target: SshTarget | undefined;
    try {
      const identityFile = join(tmp, 'identity');
      await writeFile(identityFile, req.privateKey.endsWith('\n') ? req.privateKey : `${req.privateKey}\n`, { mode: 0o600 });
      let knownHostsFile = this.o.knownHostsFile;
      if (req.knownHosts !== undefined) {
        knownHostsFile = join(tmp, 'known_hosts');
        await writeFile(knownHostsFile, req.knownHosts.endsWith('\n') ? req.knownHosts : `${req.knownHosts}\n`, { mode: 0o600 });
      } else {
        await mkdir(dirname(knownHostsFile), { recursive: true, mode: 0o700 });
        await appendFile(knownHostsFile, '', { mode: 0o600 });
      }
      target = {
        host: req.host, port: req.port, user: req.user, identityFile, knownHostsFile,
        strictHostKeyChecking: req.acceptNewHostKey && req.knownHosts === undefined ? 'accept-new' : 'yes',
      };
      const signal = this.#abort.signal;

      await this.#step(job, 'connect', say, `connecting to ${req.user}@${req.host}:${req.port}`, async () => {
        const r = await sshRun(target!, 'umask 077 && mktemp -d /tmp/tidemark-install.XXXXXX', { signal });
        if (r.code !== 0) throw explained(explainSshFailure(`ssh to ${req.user}@${req.host}:${req.port}`, r));
        const dir = r.stdout.trim();
        if (!/^\/tmp\/tidemark-install\.[A-Za-z0-9]+$/.test(dir)) throw new TidemarkError(`unexpected answer from the remote mktemp: ${JSON.stringify(dir.slice(0, 200))}`, { hint: 'the remote shell must be POSIX sh with mktemp' });
        remoteDir = dir;
        say(`connected; working in ${dir}`);
      });

      await this.#step(job, 'copy', say, `copying the agent (${(files.bundleBytes / 1024).toFixed(0)} KiB) and install.sh`, async () => {
        const r = await scpTo(target!, [files.bundlePath, files.installScriptPath], remoteDir!, { signal });
        if (r.code !== 0) throw explained(explainSshFailure('copying the agent with scp', r));
      });

      await this.#step(job, 'install', say, 'running install.sh', async () => {
        const args = installArguments(req.install, remoteDir!).map(shellQuote).join(' ');
        const sudo = req.sudo ? 'sudo -n ' : '';
        const command = `${sudo}sh ${shellQuote(`${remoteDir}/install.sh`)} ${args}; rc=$?; rm -rf ${shellQuote(remoteDir!)}; exit $rc`;
        const r = await sshRun(target!, command, { input: `${req.install.registrationKey}\n`, signal, onLine: (line) => say(line) });
        remoteDir = undefined; // the command removed it
        if (r.code === 255) throw explained(explainSshFailure('running install.sh over ssh', r));
        if (r.code !== 0) {
          const last = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('install.sh: error:')).pop();
          const hint = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('hint:')).pop();
          throw new TidemarkError(last ? last.replace(/^install\.sh: error: /, 'install.sh: ') : `install.sh exited with ${r.code}`, {
            hint: hint?.replace(/^hint: /, '') ?? (req.sudo && /sudo/.test(r.stderr) ? 'the user needs password-less sudo (sudo -n) for install.sh' : 'see the log of this push'),
          });
        }
      });
      job.state = 'succeeded';
      say(`the agent is installed on ${req.host}`);
      this.o.log.info('push install succeeded', { id: job.id, host: req.host });
    } catch (err) {
      const e = err as Error & { hint?: string };
      job.state = 'failed';
      job.error = e.message;
      job.hint = e.hint;
      say(`failed: ${e.message}`);
      this.o.log.warn('push install failed', { id: job.id, host: req.host, error: e });
      if (remoteDir && target) await sshRun(target, `rm -rf ${shellQuote(remoteDir)}`).catch(() => undefined);
    } finally {
      job.endedAt = new Date().toISOString();
      await rm(tmp, { recursive: true, force: true });
    }
  }

  async #step(job: PushInstallJob, name: StepName, say: (l: string) => void, what: string, body: () => Promise<void>): Promise<void> {
    const step = { name, state: 'running' as PushState, startedAt: new Date().toISOString(), endedAt: undefined as string | undefined };
    job.steps.push(step);
    say(`${name}: ${what}`);
    try {
      await body();
      step.state = 'succeeded';
    } catch (err) {
      step.state = 'failed';
      throw err;
    } finally {
      step.endedAt = new Date().toISOString();
    }
  }
}

function explained(e: { message: string; hint: string }): TidemarkError {
  return new TidemarkError(e.message, { hint: e.hint });
}
