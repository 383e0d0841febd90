/**
 * Carries out `failover.start` and `test-failover.cleanup` for a master target, idempotently:
 * delivery is at least once, so every machine's outcome is saved in its work folder before it
 * is reported, and a command delivered again re-reports the saved outcome instead of doing
 * the work twice; one delivered while the work still runs waits for it. A cleanup leaves a
 * small `<machineId>.cleaned` marker so that a late copy of the start command does not bring
 * the machine up again.
 *
 * Work folders: `<dataDir>/test-failovers/<jobId>/<machineId>/` (test mode) and
 * `<dataDir>/failovers/<jobId>/<machineId>/`, each with the disk images and `outcome.json`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';
import type { FailoverStartCommand, JobEvent, MachineSpec, TestFailoverCleanupCommand } from '../../core/control-plane/protocol.ts';
import { writeFileAtomic } from '../../core/fsutil.ts';
import type { Logger } from '../../core/log.ts';
import { Mutex } from '../../core/mutex.ts';
import { runActions } from './plan-actions.ts';
import type { MachineRecovery } from './recovery.ts';

const OUTCOME_FILE = 'outcome.json';
const EVENTS_PER_CALL = 50;
/** Ids from the control plane become folder names: only these characters are accepted. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface FailoverJobsOptions {
  readonly client: ControlPlaneClient;
  readonly recovery: MachineRecovery;
  /** The master target's data folder; work folders go below it. */
  readonly dataDir: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

export class FailoverJobs {
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Deciding what to do with a command and registering the work happen under this lock. */
  readonly #deciding = new Mutex();

  constructor(private readonly o: FailoverJobsOptions) {}

  /** The work folder of a machine in a job. */
  workDir(mode: 'test' | 'failover', jobId: string, machineId: string): string {
    return join(this.o.dataDir, mode === 'test' ? 'test-failovers' : 'failovers', checkId(jobId), checkId(machineId));
  }

  async start(cmd: FailoverStartCommand): Promise<void> {
    const { saved, waits } = await this.#deciding.run(() => this.#decide(cmd));
    if (saved.length > 0) await this.#send(saved);
    await Promise.all(waits);
  }

  async #decide(cmd: FailoverStartCommand): Promise<{ saved: JobEvent[]; waits: Promise<void>[] }> {
    const saved: JobEvent[] = [];
    const todo: MachineSpec[] = [];
    const waits: Promise<void>[] = [];
    for (const m of cmd.machines) {
      const dir = this.workDir(cmd.mode, cmd.jobId, m.id);
      const running = this.#inFlight.get(dir);
      if (running) {
        waits.push(running);
      } else if (await exists(`${dir}.cleaned`)) {
        this.o.log.info('machine already cleaned up; start ignored', { jobId: cmd.jobId, machineId: m.id });
      } else {
        const outcome = await readOutcome(dir);
        if (outcome) saved.push(outcome);
        else todo.push(m);
      }
    }
    if (todo.length > 0) {
      const run = this.#runGroup(cmd, todo).finally(() => {
        for (const m of todo) this.#inFlight.delete(this.workDir(cmd.mode, cmd.jobId, m.id));
      });
      for (const m of todo) this.#inFlight.set(this.workDir(cmd.mode, cmd.jobId, m.id), run);
      waits.push(run);
    }
    return { saved, waits };
  }

  async cleanup(cmd: TestFailoverCleanupCommand): Promise<void> {
    const events: JobEvent[] = [];
    for (const machineId of cmd.machineIds) {
      const dir = this.workDir('test', cmd.testFailoverJobId, machineId);
      const { running } = await this.#deciding.run(async () => {
        // The marker first: a start deciding after this sees it and leaves the machine alone.
        await mkdir(join(dir, '..'), { recursive: true });
        await writeFile(`${dir}.cleaned`, `${cmd.jobId}\n`);
        return { running: this.#inFlight.get(dir) };
      });
      await running?.catch(() => undefined);
      await this.o.recovery.tearDown(dir);
      this.o.log.info('test failover cleaned up', { jobId: cmd.jobId, testFailoverJobId: cmd.testFailoverJobId, machineId });
      events.push({ jobId: cmd.jobId, machineId, type: 'machine-cleaned', message: 'scratch disks removed' });
    }
    await this.#send(events);
  }

  /** Pre-actions, then each machine, then post-actions; every machine ends saved and reported. */
  async #runGroup(cmd: FailoverStartCommand, machines: MachineSpec[]): Promise<void> {
    const env = { TIDEMARK_JOB_ID: cmd.jobId, TIDEMARK_MODE: cmd.mode, TIDEMARK_GROUP: String(cmd.groupIndex) };
    const first = machines[0]!.id;
    const atTime = new Date();
    try {
      for (const line of await runActions(cmd.preActions, env, this.o.signal)) await this.#progress(cmd.jobId, first, line);
    } catch (err) {
      for (const m of machines) await this.#finish(cmd, m, { type: 'machine-failed', error: `pre-action failed: ${(err as Error).message}` });
      return;
    }
    for (const m of machines) {
      const log = this.o.log.child({ jobId: cmd.jobId, machineId: m.id, machine: m.name });
      const workDir = this.workDir(cmd.mode, cmd.jobId, m.id);
      const started = Date.now();
      try {
        const r = await this.o.recovery.bringUp({
          jobId: cmd.jobId, mode: cmd.mode, machine: m, atTime, point: cmd.point, workDir, bootCheck: cmd.bootCheck, signal: this.o.signal,
          ...(cmd.bootConsolePattern ? { consolePattern: cmd.bootConsolePattern } : {}),
          progress: (message) => this.#progress(cmd.jobId, m.id, message),
        });
        log.info('machine ready', { point: r.point, seconds: (Date.now() - started) / 1000 });
        await this.#finish(cmd, m, { type: 'machine-ready', point: r.point, checks: r.checks, consoleLog: r.evidence });
      } catch (err) {
        if (this.o.signal.aborted) throw err;
        log.warn('machine failed', { error: err as Error });
        await this.#finish(cmd, m, { type: 'machine-failed', error: `${m.name}: ${(err as Error).message}`.slice(0, 2048) });
      }
    }
    try {
      for (const line of await runActions(cmd.postActions, env, this.o.signal)) await this.#progress(cmd.jobId, first, line);
    } catch (err) {
      await this.#progress(cmd.jobId, first, `post-action failed: ${(err as Error).message}`);
    }
  }

  async #finish(cmd: FailoverStartCommand, m: MachineSpec, outcome: Omit<JobEvent, 'jobId' | 'machineId'>): Promise<void> {
    const dir = this.workDir(cmd.mode, cmd.jobId, m.id);
    const event: JobEvent = { jobId: cmd.jobId, machineId: m.id, ...outcome };
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dir, OUTCOME_FILE), JSON.stringify({ v: 1, event }) + '\n');
    await this.#send([event]);
  }

  async #progress(jobId: string, machineId: string, message: string): Promise<void> {
    try {
      await this.o.client.sendJobEvent({ jobId, machineId, type: 'progress', message: message.slice(0, 1024) }, { signal: this.o.signal });
    } catch (err) {
      this.o.log.warn('progress event not sent', { jobId, machineId, error: err as Error });
    }
  }

  async #send(events: JobEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += EVENTS_PER_CALL) {
      await this.o.client.sendJobEvent(events.slice(i, i + EVENTS_PER_CALL), { signal: this.o.signal });
    }
  }
}

async function readOutcome(dir: string): Promise<JobEvent | undefined> {
  try {
    const f = JSON.parse(await readFile(join(dir, OUTCOME_FILE), 'utf8')) as { v: number; event: JobEvent };
    return f.v === 1 ? f.event : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(() => true, () => false);
}

function checkId(id: string): string {
  if (!SAFE_ID.test(id)) throw new Error(`refusing id ${JSON.stringify(id.slice(0, 80))}: not a control plane id`);
  return id;
}
