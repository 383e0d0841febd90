/**
 * The QEMU/KVM hypervisor adapter (`qemu-system-x86_64`). KVM is used only when it answers a
 * short probe (`kvm-probe.ts`); otherwise TCG. Each machine runs in its own process group,
 * detached from this process so that replicas outlive a master target restart; its record
 * names the group so a later run can stop it. With `maxRunSeconds` the machine runs under
 * `timeout`, which ends it even if nobody is left to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from '../../core/log.ts';
import { silentLogger } from '../../core/log.ts';
import {
  MACHINE_RECORD_VERSION,
  type HypervisorAdapter, type MachineRecord, type MachineSettings, type StopOptions, type WaitOptions,
} from './adapter.ts';
import { waitForConsoleText, toRegExp } from './console.ts';
import { ConsoleTimeoutError, HypervisorError, MachineNotFoundError, MachineStoppedError } from './errors.ts';
import { probeKvm, type KvmProbeResult } from './kvm-probe.ts';
import { checkMachineName, MachineStore } from './machine-store.ts';
import { createOverlay } from './overlay.ts';
import { isOurProcess, signalGroup, waitUntilGone } from './process.ts';
import { qemuArgs } from './qemu-args.ts';
import { qmpCommand } from './qmp.ts';

/** How long `start` waits for QEMU to answer on its QMP socket (slow, busy hosts). */
export const DEFAULT_START_TIMEOUT_MS = 60_000;
/** How long a guest gets to power off after an ACPI power-button press. */
export const DEFAULT_STOP_GRACE_MS = 30_000;
/** After SIGTERM, how long before SIGKILL. */
const TERM_GRACE_MS = 5_000;
/** Unix socket paths are limited to 108 bytes including the terminator. */
const MAX_SOCKET_PATH = 107;

export interface QemuAdapterOptions {
  /** Where machine records, QMP sockets, overlays and default console logs live. */
  stateDir: string;
  /** @default 'qemu-system-x86_64' */
  qemuPath?: string;
  /** @default 'qemu-img' */
  qemuImgPath?: string;
  /** `auto` probes KVM once per adapter; @default 'auto'. */
  accel?: 'auto' | 'kvm' | 'tcg';
  kvmProbeTimeoutMs?: number;
  startTimeoutMs?: number;
  log?: Logger;
}

/** Creates the adapter and loads the records an earlier run left in `stateDir`. */
export async function createQemuAdapter(options: QemuAdapterOptions): Promise<QemuAdapter> {
  const adapter = new QemuAdapter(options);
  await adapter.load();
  return adapter;
}

export class QemuAdapter implements HypervisorAdapter {
  readonly kind = 'qemu';
  private readonly store: MachineStore;
  private readonly records = new Map<string, MachineRecord>();
  private readonly children = new Map<string, ChildProcess>();
  private readonly options: QemuAdapterOptions;
  private readonly log: Logger;
  private accelChoice?: Promise<KvmProbeResult>;

  constructor(options: QemuAdapterOptions) {
    this.options = options;
    this.store = new MachineStore(resolve(options.stateDir));
    this.log = (options.log ?? silentLogger).child({ hypervisor: 'qemu' });
  }

  /** Reads the records under the state directory (done by `createQemuAdapter`). */
  async load(): Promise<void> {
    await this.store.init();
    for (const record of await this.store.loadAll()) this.records.set(record.name, record);
  }

  /** The accelerator machines of this adapter use: probed once, then remembered. */
  accel(): Promise<KvmProbeResult> {
    const wanted = this.options.accel ?? 'auto';
    if (wanted !== 'auto') return Promise.resolve({ accel: wanted, reason: 'configured', elapsedMs: 0 });
    this.accelChoice ??= probeKvm({ qemuPath: this.options.qemuPath, timeoutMs: this.options.kvmProbeTimeoutMs, log: this.log });
    return this.accelChoice;
  }

  async create(settings: MachineSettings): Promise<MachineRecord> {
    checkMachineName(settings.name);
    if (this.records.has(settings.name)) {
      throw new HypervisorError(`a machine named ${settings.name} exists already`, { hint: 'delete it first or choose another name' });
    }
    if (settings.disks.length === 0 && settings.boot.mode === 'disk') {
      throw new HypervisorError(`machine ${settings.name} boots from disk but has no disk`, { hint: 'give it at least one disk' });
    }
    const qmp = this.store.pathOf(settings.name, '.qmp');
    if (Buffer.byteLength(qmp) > MAX_SOCKET_PATH) {
      throw new HypervisorError(`the state directory path is too long for a qmp socket (${qmp})`, { hint: 'use a shorter state directory' });
    }
    const overlayPaths: string[] = [];
    try {
      for (const [i, disk] of settings.disks.entries()) {
        if (disk.access !== 'overlay') continue;
        const path = this.overlayPath(settings.name, i);
        await createOverlay(disk, path, this.options.qemuImgPath);
        overlayPaths.push(path);
      }
    } catch (err) {
      await Promise.all(overlayPaths.map((p) => rm(p, { force: true })));
      throw err;
    }
    const record: MachineRecord = {
      version: MACHINE_RECORD_VERSION,
      name: settings.name,
      settings,
      state: 'created',
      consoleLogPath: resolve(settings.consoleLogPath ?? this.store.pathOf(settings.name, '.console.log')),
      overlayPaths,
      createdAt: new Date().toISOString(),
    };
    await this.store.save(record);
    this.records.set(record.name, record);
    this.log.info('machine created', { machine: record.name, disks: settings.disks.length, overlays: overlayPaths.length });
    return record;
  }

  async start(name: string): Promise<MachineRecord> {
    const record = this.refresh(this.require(name));
    if (record.state === 'running') {
      throw new HypervisorError(`machine ${name} is running already`, { hint: 'stop it first' });
    }
    const { accel } = await this.accel();
    const qmpSocketPath = this.store.pathOf(name, '.qmp');
    await rm(qmpSocketPath, { force: true });
    await writeFile(record.consoleLogPath, '');
    const overlays = new Map<number, string>();
    record.settings.disks.forEach((d, i) => { if (d.access === 'overlay') overlays.set(i, this.overlayPath(name, i)); });
    const args = qemuArgs(record.settings, { accel, consoleLogPath: record.consoleLogPath, qmpSocketPath, overlayPaths: overlays });
    const qemu = this.options.qemuPath ?? 'qemu-system-x86_64';
    const limit = record.settings.maxRunSeconds;
    const command = limit ? ['timeout', '-k', '5', String(limit), qemu, ...args] : [qemu, ...args];
    const qemuLogPath = this.store.pathOf(name, '.qemu.log');
    const out = openSync(qemuLogPath, 'w');
    let child: ChildProcess;
    try {
      child = spawn(command[0], command.slice(1), { stdio: ['ignore', out, out], detached: true });
    } finally {
      closeSync(out);
    }
    const spawnError = new Promise<Error>((res) => child.once('error', res));
    child.unref();
    this.children.set(name, child);
    child.once('exit', (code, signal) => {
      this.children.delete(name);
      const current = this.records.get(name);
      if (current && current.pid === child.pid && current.state === 'running') {
        current.state = 'stopped';
        current.stoppedAt = new Date().toISOString();
        this.store.save(current).catch((err) => this.log.warn('cannot save machine record', { machine: name, err }));
      }
      this.log.info('machine exited', { machine: name, code, signal });
    });
    Object.assign(record, { state: 'running', pid: child.pid, accel, command, startedAt: new Date().toISOString(), stoppedAt: undefined });
    await this.store.save(record);
    const ready = await Promise.race([
      this.waitForQmp(name, qmpSocketPath).then(() => undefined),
      spawnError,
    ]);
    if (ready instanceof Error || !this.isRunning(record)) {
      await this.forceEnd(record);
      const why = ready instanceof Error ? ready.message : readTail(qemuLogPath);
      throw new HypervisorError(`machine ${name} did not start: ${why}`, {
        hint: 'a read-only nbd export needs access read-only, overlay or snapshot; see ' + qemuLogPath,
      });
    }
    this.log.info('machine started', { machine: name, pid: child.pid, accel });
    return { ...record };
  }

  async waitForConsole(name: string, pattern: RegExp | string, timeoutMs: number, options: WaitOptions = {}): Promise<string> {
    const record = this.require(name);
    const shown = String(toRegExp(pattern));
    const outcome = await waitForConsoleText(record.consoleLogPath, pattern, timeoutMs, () => this.refresh(record).state === 'running', options.signal);
    if (outcome.kind === 'matched') return outcome.text;
    if (outcome.kind === 'stopped') throw new MachineStoppedError(name, shown, record.consoleLogPath);
    throw new ConsoleTimeoutError(name, shown, timeoutMs, record.consoleLogPath);
  }

  async stop(name: string, options: StopOptions = {}): Promise<MachineRecord> {
    const record = this.refresh(this.require(name));
    if (record.state === 'running' && record.pid) {
      const graceMs = options.graceMs ?? DEFAULT_STOP_GRACE_MS;
      const alive = () => this.isRunning(record);
      if (graceMs > 0) {
        try {
          await qmpCommand(this.store.pathOf(name, '.qmp'), 'system_powerdown', Math.min(graceMs, 5000));
          this.log.info('machine asked to power off', { machine: name, graceMs });
        } catch (err) {
          this.log.warn('cannot ask the machine to power off', { machine: name, err });
        }
        await waitUntilGone(alive, graceMs);
      }
      if (alive()) await this.forceEnd(record);
    }
    return this.markStopped(record);
  }

  async delete(name: string): Promise<void> {
    const record = this.refresh(this.require(name));
    if (record.state === 'running') await this.forceEnd(record);
    for (const path of record.overlayPaths) await rm(path, { force: true });
    await rm(this.store.pathOf(name, '.qmp'), { force: true });
    await this.store.remove(name);
    this.records.delete(name);
    this.log.info('machine deleted', { machine: name, overlaysRemoved: record.overlayPaths.length });
  }

  /** The record as it is; a change noticed here (the machine ended) is on disk before it returns. */
  async get(name: string): Promise<MachineRecord | undefined> {
    const record = this.records.get(name);
    if (!record) return undefined;
    const copy = { ...this.refresh(record) };
    await this.store.settled(name);
    return copy;
  }

  async list(): Promise<MachineRecord[]> {
    const records = [...this.records.values()].map((r) => ({ ...this.refresh(r) }));
    for (const r of records) await this.store.settled(r.name);
    return records.sort((a, b) => a.name.localeCompare(b.name));
  }

  private require(name: string): MachineRecord {
    const record = this.records.get(name);
    if (!record) throw new MachineNotFoundError(name);
    return record;
  }

  private overlayPath(name: string, diskIndex: number): string {
    return this.store.pathOf(name, `.disk${diskIndex}.overlay.qcow2`);
  }

  /** Running means: the process group leader we recorded is alive and is still ours. */
  private isRunning(record: MachineRecord): boolean {
    if (!record.pid) return false;
    const child = this.children.get(record.name);
    if (child && child.pid === record.pid) return child.exitCode === null && child.signalCode === null;
    return isOurProcess(record.pid, this.store.pathOf(record.name, '.qmp'));
  }

  /** Notices a machine that ended by itself (or while this process was not running). */
  private refresh(record: MachineRecord): MachineRecord {
    if (record.state === 'running' && !this.isRunning(record)) {
      record.state = 'stopped';
      record.stoppedAt ??= new Date().toISOString();
      this.store.save(record).catch((err) => this.log.warn('cannot save machine record', { machine: record.name, err }));
    }
    return record;
  }

  /** SIGTERM to the machine's process group, then SIGKILL; waits until it is gone (and reaped). */
  private async forceEnd(record: MachineRecord): Promise<void> {
    if (!record.pid) return;
    const alive = () => this.isRunning(record);
    signalGroup(record.pid, 'SIGTERM');
    if (!(await waitUntilGone(alive, TERM_GRACE_MS))) {
      signalGroup(record.pid, 'SIGKILL');
      if (!(await waitUntilGone(alive, TERM_GRACE_MS))) {
        throw new HypervisorError(`machine ${record.name} (pid ${record.pid}) did not end after SIGKILL`, { hint: 'check the process with ps; the host may be stuck in I/O' });
      }
    }
    this.log.info('machine process ended', { machine: record.name, pid: record.pid });
    await this.markStopped(record);
  }

  private async markStopped(record: MachineRecord): Promise<MachineRecord> {
    if (record.state !== 'created') {
      record.state = 'stopped';
      record.stoppedAt ??= new Date().toISOString();
    }
    await this.store.save(record);
    return { ...record };
  }

  /** Resolves once QEMU answers on QMP (its machine is built and its disks are open). */
  private async waitForQmp(name: string, socketPath: string): Promise<void> {
    const record = this.require(name);
    const deadline = Date.now() + (this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    for (;;) {
      if (!this.isRunning(record)) return;
      try {
        await qmpCommand(socketPath, 'query-status', 5000);
        return;
      } catch (err) {
        if (Date.now() >= deadline) throw new HypervisorError(`machine ${name} did not answer on qmp in time`, { cause: err, hint: 'the host may be overloaded' });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

/** The last lines of QEMU's own output, for an error message. */
function readTail(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return text.split('\n').slice(-3).join(' | ') || 'qemu exited without a message';
  } catch {
    return 'qemu exited without a message';
  }
}
