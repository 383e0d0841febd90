/**
 * One call to bring up a replica machine from views: what test failover (`failover --test
 * --boot`) needs. Writable disks get a qcow2 overlay over their view, so the guest can write
 * while the view (and the replica behind it) stays as it was.
 *
 * @example
 * ```ts
 * const hv = await createQemuAdapter({ stateDir });
 * const m = await startReplicaMachine(hv, {
 *   name: 'web-1-drill', cpus: 2, memoryMiB: 2048, network: 'isolated',
 *   disks: [{ uri: 'nbd://127.0.0.1:10809/web-1-sda', writable: true }],
 *   bootMode: { mode: 'disk' },
 * });
 * await m.waitForConsole(/login:/, 600_000);
 * await m.delete();
 * ```
 */
import type {
  BootSettings, DiskFormat, HypervisorAdapter, MachineRecord, NetworkMode, StopOptions, WaitOptions,
} from './adapter.ts';

/** One disk of a replica: a view's `nbd://` URI or an image path. */
export interface ReplicaDisk {
  uri: string;
  /** Writable through an overlay the adapter removes on delete; the view is never written. */
  writable: boolean;
  /** For a local image; @default 'raw'. */
  format?: DiskFormat;
}

export interface ReplicaMachineSettings {
  name: string;
  disks: ReplicaDisk[];
  cpus: number;
  memoryMiB: number;
  /** @default 'isolated' */
  network?: NetworkMode;
  /** @default { mode: 'disk' } */
  bootMode?: BootSettings;
  /** @default `<stateDir>/<name>.console.log` */
  consoleLog?: string;
  maxRunSeconds?: number;
}

/** A started machine, bound to its adapter. */
export interface ReplicaMachine {
  readonly name: string;
  readonly consoleLogPath: string;
  waitForConsole(pattern: RegExp | string, timeoutMs: number, options?: WaitOptions): Promise<string>;
  stop(options?: StopOptions): Promise<MachineRecord>;
  delete(): Promise<void>;
  record(): Promise<MachineRecord | undefined>;
}

/** Creates and starts a machine; if it cannot start, what was created is deleted again. */
export async function startReplicaMachine(hypervisor: HypervisorAdapter, settings: ReplicaMachineSettings): Promise<ReplicaMachine> {
  const created = await hypervisor.create({
    name: settings.name,
    cpus: settings.cpus,
    memoryMiB: settings.memoryMiB,
    network: settings.network ?? 'isolated',
    boot: settings.bootMode ?? { mode: 'disk' },
    consoleLogPath: settings.consoleLog,
    maxRunSeconds: settings.maxRunSeconds,
    disks: settings.disks.map((d) => ({ source: d.uri, format: d.format, access: d.writable ? 'overlay' : 'read-only' })),
  });
  try {
    await hypervisor.start(settings.name);
  } catch (err) {
    await hypervisor.delete(settings.name).catch(() => {});
    throw err;
  }
  return bindMachine(hypervisor, created.name, created.consoleLogPath);
}

/** A handle on an existing machine (for example one found by `list()` after a restart). */
export function bindMachine(hypervisor: HypervisorAdapter, name: string, consoleLogPath: string): ReplicaMachine {
  return {
    name,
    consoleLogPath,
    waitForConsole: (pattern, timeoutMs, options) => hypervisor.waitForConsole(name, pattern, timeoutMs, options),
    stop: (options) => hypervisor.stop(name, options),
    delete: () => hypervisor.delete(name),
    record: () => hypervisor.get(name),
  };
}
