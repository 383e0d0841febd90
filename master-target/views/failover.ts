/**
 * Failover of one machine at the master target (docs/views.md):
 * - test: writable views of every disk at one point and, if asked, a replica machine booted
 *   isolated from them through the hypervisor adapter; replication goes on; `cleanup` ends it.
 * - live: replication of the machine stops (batches are refused until it is re-protected),
 *   then every disk is materialised at the point into a new image.
 *
 * The machine's disks are chosen at one moment: the requested time (or the time of a point id
 * on the machine's first disk), and per disk the newest kept point at or before it.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TidemarkError, UsageError } from '../../core/errors.ts';
import { syncDir } from '../../core/fsutil.ts';
import type { Logger } from '../../core/log.ts';
import type { DiskStream } from '../disk-stream.ts';
import type { BootSettings, HypervisorAdapter } from '../hypervisor/adapter.ts';
import { startReplicaMachine } from '../hypervisor/replica-machine.ts';
import type { Point } from '../points.ts';
import type { StreamStore } from '../store.ts';
import { materialise, type ImageFormat, type MaterialiseProgress, type MaterialiseResult } from './materialise.ts';
import { newestKeptAtOrBefore, PointNotFoundError, resolvePoint, type PointRules } from './resolve-point.ts';
import type { ViewInfo, ViewManager } from './view-manager.ts';

/** The machine is failed over: its replication is stopped. */
export class MachineFailedOverError extends TidemarkError {}
/** A test failover of the machine is already running (or none is, for cleanup). */
export class FailoverConflictError extends TidemarkError {}

/** Settings of a replica machine started by a test failover. */
export interface BootRequest {
  cpus?: number;
  memoryMiB?: number;
  /** Boot a kernel directly (test systems) instead of the first disk's firmware. */
  kernelPath?: string;
  initrdPath?: string;
  append?: string;
  maxRunSeconds?: number;
}

export interface ChosenDisk {
  disk: string;
  point: { id: string; seq: number; time: string; kind: string };
}

export interface TestFailoverReport {
  machine: string;
  mode: 'test';
  at: string;
  pointTime: string;
  pointAgeSeconds: number;
  disks: Array<ChosenDisk & { view: ViewInfo }>;
  replica?: { name: string; consoleLogPath: string };
  seconds: number;
}

export interface LiveFailoverReport {
  machine: string;
  mode: 'live';
  at: string;
  pointTime: string;
  pointAgeSeconds: number;
  disks: Array<ChosenDisk & { image: MaterialiseResult }>;
  seconds: number;
}

export interface CleanupReport {
  machine: string;
  closedViews: string[];
  deletedReplica?: string;
  seconds: number;
}

interface TestFailover {
  viewIds: string[];
  replica?: string;
}

export interface FailoverOptions {
  dataDir: string;
  store: StreamStore;
  views: ViewManager;
  rules: PointRules;
  /** Made on first use (a boot); undefined when none is available. */
  hypervisor?: () => Promise<HypervisorAdapter>;
  log: Logger;
}

export class FailoverManager {
  private readonly tests = new Map<string, TestFailover>();
  private readonly stopped = new Set<string>();
  private readonly markerDir: string;

  private constructor(private readonly opts: FailoverOptions) {
    this.markerDir = join(opts.dataDir, 'failed-over');
  }

  /** Loads which machines are failed over (kept across restarts). */
  static async open(opts: FailoverOptions): Promise<FailoverManager> {
    const m = new FailoverManager(opts);
    await mkdir(m.markerDir, { recursive: true });
    for (const f of await readdir(m.markerDir)) if (f.endsWith('.json')) m.stopped.add(f.slice(0, -5));
    return m;
  }

  /** True when the machine's replication is stopped by a live failover. */
  isFailedOver(machine: string): boolean {
    return this.stopped.has(machine);
  }

  refuseIfFailedOver(machine: string): void {
    if (this.stopped.has(machine)) {
      throw new MachineFailedOverError(`machine ${machine} is failed over; its replication is stopped and batches are refused`, {
        hint: 're-protect the machine to resume replication',
      });
    }
  }

  /** The disks of `machine` and their points at one moment. */
  choosePoints(machine: string, at: string): { disks: Array<{ stream: DiskStream; point: Point }>; pointTime: string } {
    const streams = this.opts.store.list().filter((s) => s.machine === machine);
    if (!streams.length) throw new PointNotFoundError(`no disks of machine ${machine} at this master target`, { hint: 'GET /v1/machines lists the machines it holds' });
    let timeMs: number;
    let exact: { stream: DiskStream; point: Point } | undefined;
    if (at === 'latest') timeMs = this.opts.rules.now();
    else if (/^\d{1,15}$/.test(at)) {
      exact = { stream: streams[0], point: resolvePoint(streams[0], at, this.opts.rules) };
      timeMs = Date.parse(exact.point.time);
    } else {
      timeMs = Date.parse(at);
      if (!Number.isFinite(timeMs)) throw new UsageError(`at must be latest, a point id or an ISO 8601 time, got ${JSON.stringify(at)}`);
    }
    const disks = streams.map((stream) => {
      if (exact?.stream === stream) return exact;
      const point = newestKeptAtOrBefore(stream, timeMs, this.opts.rules);
      if (!point) {
        throw new PointNotFoundError(`disk ${machine}/${stream.disk} has no recovery point at or before ${new Date(timeMs).toISOString()}`, {
          hint: `list its points with 'tidemark points --machine ${machine} --disk ${stream.disk}'`,
        });
      }
      return { stream, point };
    });
    const oldest = Math.min(...disks.map((d) => Date.parse(d.point.time)));
    return { disks, pointTime: new Date(oldest).toISOString() };
  }

  /** Opens writable views of every disk at one point and, with `boot`, starts the replica. */
  async test(machine: string, at: string, boot?: BootRequest): Promise<TestFailoverReport> {
    const started = performance.now();
    if (this.tests.has(machine)) {
      throw new FailoverConflictError(`a test failover of ${machine} is already running`, { hint: `run 'tidemark cleanup --machine ${machine}' first` });
    }
    const chosen = this.choosePoints(machine, at);
    const entry: TestFailover = { viewIds: [] };
    this.tests.set(machine, entry);
    const disks: TestFailoverReport['disks'] = [];
    try {
      for (const { stream, point } of chosen.disks) {
        const view = await this.opts.views.open(stream, point, true);
        entry.viewIds.push(view.id);
        disks.push({ disk: stream.disk, point: view.point, view });
      }
      let replica: TestFailoverReport['replica'];
      if (boot) {
        if (!this.opts.hypervisor) throw new FailoverConflictError('no hypervisor adapter is configured at this master target', { hint: 'run failover --test without --boot' });
        const hv = await this.opts.hypervisor();
        const name = `${machine}-test`;
        const bootMode: BootSettings = boot.kernelPath
          ? { mode: 'kernel', kernelPath: boot.kernelPath, ...(boot.initrdPath ? { initrdPath: boot.initrdPath } : {}), ...(boot.append ? { append: boot.append } : {}) }
          : { mode: 'disk' };
        const m = await startReplicaMachine(hv, {
          name,
          cpus: boot.cpus ?? 1,
          memoryMiB: boot.memoryMiB ?? 512,
          network: 'isolated',
          bootMode,
          disks: disks.map((d) => ({ uri: d.view.uri, writable: true })),
          ...(boot.maxRunSeconds ? { maxRunSeconds: boot.maxRunSeconds } : {}),
        });
        entry.replica = name;
        replica = { name, consoleLogPath: m.consoleLogPath };
      }
      const report: TestFailoverReport = {
        machine,
        mode: 'test',
        at,
        pointTime: chosen.pointTime,
        pointAgeSeconds: ageSeconds(chosen.pointTime, this.opts.rules.now()),
        disks,
        ...(replica ? { replica } : {}),
        seconds: (performance.now() - started) / 1000,
      };
      this.opts.log.info('test failover started', { machine, at, pointTime: report.pointTime, disks: disks.length, replica: replica?.name, seconds: report.seconds });
      return report;
    } catch (err) {
      await this.cleanup(machine).catch(() => undefined);
      throw err;
    }
  }

  /** Ends a test failover: deletes the replica machine and closes the views (their writes are gone). */
  async cleanup(machine: string): Promise<CleanupReport> {
    const started = performance.now();
    const entry = this.tests.get(machine);
    let deletedReplica: string | undefined;
    if (entry?.replica && this.opts.hypervisor) {
      const hv = await this.opts.hypervisor();
      await hv.delete(entry.replica);
      deletedReplica = entry.replica;
    }
    const closed = await this.opts.views.closeMachine(machine);
    this.tests.delete(machine);
    const report: CleanupReport = { machine, closedViews: closed.map((v) => v.id), ...(deletedReplica ? { deletedReplica } : {}), seconds: (performance.now() - started) / 1000 };
    this.opts.log.info('test failover cleaned up', { machine, views: closed.length, replica: deletedReplica });
    return report;
  }

  /** Stops replication of `machine`, then materialises every disk at one point into `outDir`. */
  async live(
    machine: string,
    at: string,
    opts: { outDir?: string; format?: ImageFormat; onProgress?: (disk: string, p: MaterialiseProgress) => void; signal?: AbortSignal } = {},
  ): Promise<LiveFailoverReport> {
    const started = performance.now();
    this.refuseIfFailedOver(machine);
    const chosen = this.choosePoints(machine, at);
    await this.markFailedOver(machine, { at, pointTime: chosen.pointTime, startedAt: new Date(this.opts.rules.now()).toISOString() });
    const outDir = opts.outDir ?? join(this.opts.dataDir, 'images', machine);
    await mkdir(outDir, { recursive: true });
    const disks: LiveFailoverReport['disks'] = [];
    try {
      for (const { stream, point } of chosen.disks) {
        const reader = stream.openReader(point.seq);
        try {
          const format = opts.format ?? 'raw';
          const image = await materialise(reader, join(outDir, `${stream.disk}.${format === 'raw' ? 'img' : 'qcow2'}`), {
            format,
            onProgress: (p) => opts.onProgress?.(stream.disk, p),
            signal: opts.signal,
          });
          disks.push({ disk: stream.disk, point: { id: point.id, seq: point.seq, time: point.time, kind: point.kind }, image });
          this.opts.log.info('disk materialised', { machine, disk: stream.disk, seq: point.seq, path: image.path, bytes: image.sizeBytes, seconds: image.seconds });
        } finally {
          await reader.close();
        }
      }
    } catch (err) {
      // Nothing usable was produced: replication may resume.
      await this.clearFailedOver(machine);
      throw err;
    }
    const report: LiveFailoverReport = {
      machine,
      mode: 'live',
      at,
      pointTime: chosen.pointTime,
      pointAgeSeconds: ageSeconds(chosen.pointTime, this.opts.rules.now()),
      disks,
      seconds: (performance.now() - started) / 1000,
    };
    this.opts.log.info('live failover done; replication of the machine is stopped', { machine, pointTime: report.pointTime, disks: disks.length, seconds: report.seconds });
    return report;
  }

  private async markFailedOver(machine: string, record: object): Promise<void> {
    this.stopped.add(machine);
    const path = join(this.markerDir, `${machine}.json`);
    await writeFile(`${path}.tmp`, JSON.stringify({ version: 1, machine, ...record }) + '\n');
    await rename(`${path}.tmp`, path);
    await syncDir(this.markerDir);
  }

  private async clearFailedOver(machine: string): Promise<void> {
    await rm(join(this.markerDir, `${machine}.json`), { force: true });
    await syncDir(this.markerDir);
    this.stopped.delete(machine);
  }

  /** The record of a live failover, if the machine is failed over. */
  async failedOverRecord(machine: string): Promise<unknown> {
    if (!this.stopped.has(machine)) return undefined;
    return JSON.parse(await readFile(join(this.markerDir, `${machine}.json`), 'utf8'));
  }

  /** Ends every test failover (views and replicas) at shutdown. */
  async close(): Promise<void> {
    for (const m of [...this.tests.keys()]) await this.cleanup(m).catch((err) => this.opts.log.warn('cleanup at shutdown failed', { machine: m, error: err }));
  }
}

function ageSeconds(time: string, nowMs: number): number {
  return Math.max(0, Math.round((nowMs - Date.parse(time)) / 100) / 10);
}
