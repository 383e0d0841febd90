/**
 * The hypervisor adapter: how the master target creates, runs, watches and removes replica
 * machines. One interface, one implementation per hypervisor (QEMU/KVM first, `qemu.ts`).
 *
 * A machine is named; its record (settings, process id, overlays it created) lives in memory
 * and in one small JSON file per machine under the adapter's state directory, so a restarted
 * master target can list, stop and delete what an earlier run started.
 *
 * @example
 * ```ts
 * const hv = await createQemuAdapter({ stateDir: '/var/lib/tidemark/machines' });
 * await hv.create({ name: 'web-1-test', cpus: 2, memoryMiB: 2048, network: 'isolated',
 *   disks: [{ source: 'nbd://127.0.0.1:10809/web-1-sda', access: 'overlay' }],
 *   boot: { mode: 'disk' } });
 * await hv.start('web-1-test');
 * await hv.waitForConsole('web-1-test', /login:/, 300_000);
 * await hv.stop('web-1-test');
 * await hv.delete('web-1-test');
 * ```
 */

/** Version of the per-machine JSON record; readers refuse versions they do not know. */
export const MACHINE_RECORD_VERSION = 1;

/** Image formats a local disk file may have. Sources over NBD are always raw. */
export type DiskFormat = 'raw' | 'qcow2';

/**
 * What the guest may do with a disk:
 * - `read-only`: the guest sees the disk read-only (a read-only export needs this or an overlay);
 * - `overlay`: the guest writes to a qcow2 overlay that the adapter creates over the source and
 *   removes on delete; the source is never written;
 * - `snapshot`: the guest writes to a temporary file QEMU keeps and drops when it exits;
 * - `read-write`: the guest writes to the source itself (only for images and writable exports).
 */
export type DiskAccess = 'read-only' | 'overlay' | 'snapshot' | 'read-write';

/** One disk of a machine, in boot order (the first one is the boot disk). */
export interface DiskSettings {
  /** A local image file path, or an `nbd://HOST:PORT/EXPORT` URI. */
  source: string;
  /** Format of a local image; @default 'raw'. Ignored for `nbd://` sources (always raw). */
  format?: DiskFormat;
  access: DiskAccess;
}

/**
 * Network of a machine:
 * - `none`: no network device at all;
 * - `isolated`: a NIC on a private user-mode network that cannot reach the host or the outside
 *   (the right choice for drills: the replica cannot talk to production);
 * - `user`: a NIC on a user-mode network with outbound access through the host (NAT).
 */
export type NetworkMode = 'none' | 'isolated' | 'user';

/**
 * How a machine boots:
 * - `kernel`: a kernel and initrd given directly (test images);
 * - `disk`: firmware from the first disk, as real replicas boot.
 */
export type BootSettings =
  | { mode: 'kernel'; kernelPath: string; initrdPath?: string; append?: string }
  | { mode: 'disk'; firmwarePath?: string };

/** Everything needed to create a machine. */
export interface MachineSettings {
  /** Unique among this adapter's machines: letters, digits, `.`, `_` and `-`. */
  name: string;
  cpus: number;
  memoryMiB: number;
  disks: DiskSettings[];
  network: NetworkMode;
  boot: BootSettings;
  /** Where the serial console is written; @default `<stateDir>/<name>.console.log`. */
  consoleLogPath?: string;
  /**
   * A hard limit on the machine's run time: the process is ended after this many seconds even
   * if this process dies first (for tests and drills). @default no limit.
   */
  maxRunSeconds?: number;
}

/** Where a machine is in its life. `stopped` also covers a process that ended by itself. */
export type MachineState = 'created' | 'running' | 'stopped';

/** The record the adapter keeps for each machine (in memory and as `<stateDir>/<name>.json`). */
export interface MachineRecord {
  version: typeof MACHINE_RECORD_VERSION;
  name: string;
  settings: MachineSettings;
  state: MachineState;
  consoleLogPath: string;
  /** Overlay files the adapter created for this machine; removed on delete. */
  overlayPaths: string[];
  /** Accelerator chosen at start: `kvm` when it answered the probe, otherwise `tcg`. */
  accel?: 'kvm' | 'tcg';
  /** Process group leader of the running machine. */
  pid?: number;
  /** The command line the machine was started with (program first). */
  command?: string[];
  createdAt: string;
  startedAt?: string;
  stoppedAt?: string;
}

/** Options for {@link HypervisorAdapter.stop}. */
export interface StopOptions {
  /** How long the guest gets to power off after an ACPI power-button press; @default 30000. */
  graceMs?: number;
}

/** Options for {@link HypervisorAdapter.waitForConsole}. */
export interface WaitOptions {
  signal?: AbortSignal;
}

/**
 * A hypervisor. Every method throws a `HypervisorError` (see `errors.ts`) with a hint when it
 * cannot do what it says.
 */
export interface HypervisorAdapter {
  /** Names the hypervisor (`qemu`). */
  readonly kind: string;
  /**
   * Records a new machine and prepares its disks (creates overlays). Does not start it.
   * Throws if a machine of that name exists or a disk source is unusable.
   */
  create(settings: MachineSettings): Promise<MachineRecord>;
  /** Starts a created or stopped machine; its serial console goes to `consoleLogPath` (truncated first). */
  start(name: string): Promise<MachineRecord>;
  /**
   * Resolves with the first match of `pattern` on the machine's console. Rejects with a
   * `ConsoleTimeoutError` after `timeoutMs`, or a `MachineStoppedError` if the machine ends first.
   */
  waitForConsole(name: string, pattern: RegExp | string, timeoutMs: number, options?: WaitOptions): Promise<string>;
  /** Asks the guest to power off, then ends the process after `graceMs`. Safe on a stopped machine. */
  stop(name: string, options?: StopOptions): Promise<MachineRecord>;
  /** Stops the machine if it runs (forced), removes the overlays it created and forgets it. */
  delete(name: string): Promise<void>;
  /** The record of one machine, with its state refreshed; undefined if unknown. */
  get(name: string): Promise<MachineRecord | undefined>;
  /** Every machine this adapter (or an earlier run on the same state directory) created. */
  list(): Promise<MachineRecord[]>;
}
