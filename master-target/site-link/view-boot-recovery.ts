/**
 * A machine brought up for a test failover through the master target's failover API
 * (docs/views.md): writable NBD views of every disk at the job's point (by default the newest
 * consistent point at or before the job's time) and, when the plan asks for the boot check,
 * the replica machine booted from them on an isolated network. The boot check waits for the
 * replica's serial console to show the plan's console pattern (else the link's
 * `consolePattern`; without either, any text at all) and reports the tail of
 * the console as evidence. Cleanup deletes the replica and closes the views.
 *
 * Used only when the master target serves views (started with `--nbd`); otherwise, and for a
 * real failover (`mode: 'failover'`), the fallback recovery (disk images) does the work.
 *
 * The console log is read from the path the API names: the site link runs on the master
 * target's host (it shares its data folder).
 *
 * @example
 *   const recovery = new ViewBootRecovery({ api, fallback: new ImageExportRecovery(api), log,
 *     boot: { consolePattern: /login:/, timeoutSeconds: 600 } });
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Check, RecoveryPointRef } from '../../core/control-plane/protocol.ts';
import { writeFileAtomic } from '../../core/fsutil.ts';
import type { Logger } from '../../core/log.ts';
import { KIND } from './image-export-recovery.ts';
import type { ApiTestFailover, MasterTargetApi, ReplicaBoot } from './master-target-api.ts';
import type { BringUpRequest, BringUpResult, MachineRecovery } from './recovery.ts';
import { resolvePointChoice } from './point-choice.ts';

/** How long the boot check waits for the console. */
export const DEFAULT_BOOT_TIMEOUT_SECONDS = 300;
/** How long a "views served or not" answer is trusted before asking the master target again. */
const PROBE_TTL_MS = 60_000;
const CONSOLE_POLL_MS = 250;
/** Tail of the console kept as evidence (the job event allows 64 KiB in all). */
const CONSOLE_TAIL_BYTES = 16 * 1024;
const EVIDENCE_MAX = 65_536;
/** What a machine's work folder holds while its test failover runs: the master target's machine and views. */
const RECORD_FILE = 'view-boot.json';

export interface ViewBootSettings {
  /** What the replica boots: CPUs, memory, or a kernel for test systems. @default the first disk's firmware, 1 CPU, 512 MiB */
  readonly replica?: ReplicaBoot;
  /** Console text meaning "booted" (a string matches literally). @default any printed text */
  readonly consolePattern?: RegExp | string;
  /** @default 300 */
  readonly timeoutSeconds?: number;
}

export interface ViewBootRecoveryOptions {
  readonly api: MasterTargetApi;
  /** Does the work when the master target serves no views, and for real failovers. */
  readonly fallback: MachineRecovery;
  readonly boot?: ViewBootSettings;
  readonly log: Logger;
}

interface TestRecord {
  v: 1;
  machine: string;
  /** Empty until the master target answered. */
  viewIds: string[];
}

export class ViewBootRecovery implements MachineRecovery {
  #probe: { served: boolean; atMs: number } | undefined;

  constructor(private readonly o: ViewBootRecoveryOptions) {}

  async bringUp(req: BringUpRequest): Promise<BringUpResult> {
    if (req.mode !== 'test' || !(await this.#viewsServed(req.signal))) return this.o.fallback.bringUp(req);
    const api = this.o.api;
    const machine = req.machine.name;
    const at = await resolvePointChoice(api, req.machine, req.point, req.atTime, req.signal);
    await mkdir(req.workDir, { recursive: true, mode: 0o700 });
    const recordPath = join(req.workDir, RECORD_FILE);
    if (await readRecord(req.workDir)) {
      // An earlier attempt of this job was interrupted after it may have started the test failover.
      await req.progress(`ending the test failover of ${machine} left by an interrupted attempt`);
      await api.cleanup(machine, req.signal);
    }
    await writeFileAtomic(recordPath, JSON.stringify({ v: 1, machine, viewIds: [] } satisfies TestRecord) + '\n');

    const boot = req.bootCheck ? { ...this.o.boot?.replica } : undefined;
    await req.progress(`opening writable views of ${machine} at ${at.label}${boot ? ' and booting its replica' : ''}`);
    let r: ApiTestFailover;
    try {
      r = await api.testFailover(machine, at.machineAt, boot, req.signal);
    } catch (err) {
      const hint = (err as { hint?: string }).hint;
      throw new Error(`test failover at the master target failed: ${(err as Error).message}${hint ? ` (${hint})` : ''}`, { cause: err });
    }
    await writeFileAtomic(recordPath, JSON.stringify({ v: 1, machine, viewIds: r.disks.map((d) => d.view.id) } satisfies TestRecord) + '\n');
    try {
      return await this.#check(req, r);
    } catch (err) {
      // Nothing usable came up: end it now rather than leave a replica running until cleanup.
      await api.cleanup(machine).catch((e) => this.o.log.warn('cleanup after a failed bring-up failed', { machine, error: e as Error }));
      throw err;
    }
  }

  async #check(req: BringUpRequest, r: ApiTestFailover): Promise<BringUpResult> {
    const checks: Check[] = [];
    const lines: string[] = [];
    let oldest: RecoveryPointRef | undefined;
    for (const d of req.machine.disks) {
      const got = r.disks.find((x) => x.disk === d.name);
      if (!got) throw new Error(`disk ${d.name} is not at the master target (it has ${r.disks.map((x) => x.disk).join(', ') || 'none'})`);
      const p = got.point;
      const ref: RecoveryPointRef = { time: p.time, seq: p.seq, ...(p.kind in KIND ? { kind: KIND[p.kind as keyof typeof KIND] } : {}) };
      if (!oldest || Date.parse(ref.time) < Date.parse(oldest.time)) oldest = ref;
      const detail = `writable view ${got.view.id} of ${d.name} opened at point ${p.id} (${ref.kind ?? p.kind}, ${p.time}), ${got.view.sizeBytes} bytes, ${got.view.uri}`;
      checks.push({ name: `view ${d.name}`, passed: true, detail });
      lines.push(detail);
      if (d.sizeBytes && d.sizeBytes !== got.view.sizeBytes) {
        checks.push({ name: `size ${d.name}`, passed: false, detail: `enrolled as ${d.sizeBytes} bytes, the replica has ${got.view.sizeBytes}` });
      }
    }
    if (!oldest) throw new Error(`machine ${req.machine.name} has no disks`);
    lines.push(`point ${r.pointTime}, ${r.pointAgeSeconds} s old; views opened in ${r.seconds.toFixed(1)} s`);
    if (!req.bootCheck) return { point: oldest, checks, evidence: lines.join('\n').slice(0, EVIDENCE_MAX) };

    if (!r.replica) throw new Error('the master target started no replica machine although a boot was asked for');
    const settings = this.o.boot ?? {};
    const timeoutSeconds = settings.timeoutSeconds ?? DEFAULT_BOOT_TIMEOUT_SECONDS;
    const pattern = req.consolePattern ?? settings.consolePattern;
    const wanted = pattern === undefined ? 'any console output' : `${pattern instanceof RegExp ? String(pattern) : JSON.stringify(pattern)} on the console`;
    await req.progress(`replica ${r.replica.name} started; waiting up to ${timeoutSeconds} s for ${wanted}`);
    const started = Date.now();
    const seen = await waitForConsole(r.replica.consoleLogPath, pattern, timeoutSeconds * 1000, req.signal);
    const tail = consoleTail(seen.text);
    if (!seen.match) {
      throw new Error(`boot check failed: no ${wanted} within ${timeoutSeconds} s; console tail: ${tail.slice(-1500) || '(empty)'}`);
    }
    const seconds = (Date.now() - started) / 1000;
    checks.push({ name: 'boot', passed: true, detail: `booted: console shows ${JSON.stringify(seen.match.slice(0, 200))} after ${seconds.toFixed(1)} s`.slice(0, 2048) });
    lines.push(`replica ${r.replica.name} booted: console shows ${JSON.stringify(seen.match.slice(0, 200))} after ${seconds.toFixed(1)} s`);
    const head = lines.join('\n') + '\n--- console (tail) ---\n';
    return { point: oldest, checks, evidence: (head + tail).slice(0, EVIDENCE_MAX) };
  }

  async tearDown(workDir: string): Promise<void> {
    const record = await readRecord(workDir);
    if (record) {
      // Only our own test failover: if none of its views is open any more (the master target
      // restarted, or it was cleaned up), another job's test failover of the machine is left alone.
      const open = record.viewIds.length === 0 ? [] : await this.o.api.openViewIds(record.machine);
      if (record.viewIds.length === 0 || record.viewIds.some((id) => open.includes(id))) {
        const c = await this.o.api.cleanup(record.machine);
        this.o.log.info('test failover ended at the master target', { machine: record.machine, closedViews: c.closedViews.length, replica: c.deletedReplica });
      }
    }
    await this.o.fallback.tearDown(workDir);
  }

  async #viewsServed(signal: AbortSignal): Promise<boolean> {
    if (this.#probe && Date.now() - this.#probe.atMs < PROBE_TTL_MS) return this.#probe.served;
    const served = await this.o.api.servesViews(signal);
    if (this.#probe?.served !== served) {
      this.o.log.info(served ? 'the master target serves views: test failovers open views and boot replicas'
        : 'the master target serves no views (no --nbd): test failovers export disk images', { served });
    }
    this.#probe = { served, atMs: Date.now() };
    return served;
  }
}

/** Polls the console log until it shows `pattern` (any printed text without one) or the time is up. */
async function waitForConsole(path: string, pattern: RegExp | string | undefined, timeoutMs: number, signal: AbortSignal): Promise<{ text: string; match?: string }> {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  for (;;) {
    text = await readFile(path, 'latin1').catch(() => text);
    const match = findInConsole(text, pattern);
    if (match !== undefined) return { text, match };
    if (Date.now() >= deadline) return { text };
    await sleep(CONSOLE_POLL_MS, undefined, { signal });
  }
}

/** The console line (trimmed) that shows `pattern`, or the first printed line without one. */
export function findInConsole(text: string, pattern: RegExp | string | undefined): string | undefined {
  const clean = printable(text);
  if (pattern === undefined) return clean.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  const at = typeof pattern === 'string' ? clean.indexOf(pattern) : clean.search(new RegExp(pattern.source, pattern.flags.replace('g', '')));
  if (at < 0) return undefined;
  const start = clean.lastIndexOf('\n', at) + 1;
  const end = clean.indexOf('\n', at);
  return clean.slice(start, end < 0 ? undefined : end).trim();
}

/** The last `CONSOLE_TAIL_BYTES` of the console, printable text only. */
function consoleTail(text: string): string {
  return printable(text).slice(-CONSOLE_TAIL_BYTES);
}

/** Drops escape sequences, carriage returns and other control characters (keeps newlines and tabs). */
function printable(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

async function readRecord(workDir: string): Promise<TestRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(join(workDir, RECORD_FILE), 'utf8')) as TestRecord;
    return r.v === 1 ? r : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
