/**
 * The `qemu-system-x86_64` command line for a machine: a pure function of its settings, so the
 * command is easy to read in a test and in the machine's record.
 */
import { resolve } from 'node:path';
import type { DiskSettings, MachineSettings, NetworkMode } from './adapter.ts';

/** Paths and choices made at start time, beside the machine's settings. */
export interface QemuRunPaths {
  accel: 'kvm' | 'tcg';
  consoleLogPath: string;
  qmpSocketPath: string;
  /** Overlay file per disk index, for disks with `access: 'overlay'`. */
  overlayPaths: Map<number, string>;
}

/** True for an `nbd://` (or `nbd+unix://`) source. */
export function isNbdSource(source: string): boolean {
  return /^nbd(\+unix)?:\/\//.test(source);
}

/** QEMU option values double their commas. */
function escapeOption(value: string): string {
  return value.replace(/,/g, ',,');
}

/** The `-drive` value for one disk. */
export function driveOption(disk: DiskSettings, index: number, overlayPath: string | undefined): string {
  const id = `disk${index}`;
  if (disk.access === 'overlay') {
    if (!overlayPath) throw new Error(`disk ${index} needs an overlay path`);
    return `if=none,id=${id},file=${escapeOption(overlayPath)},format=qcow2`;
  }
  const nbd = isNbdSource(disk.source);
  const file = nbd ? disk.source : resolve(disk.source);
  const format = nbd ? 'raw' : (disk.format ?? 'raw');
  const base = `if=none,id=${id},file=${escapeOption(file)},format=${format}`;
  if (disk.access === 'read-only') return `${base},readonly=on`;
  if (disk.access === 'snapshot') return `${base},snapshot=on`;
  return base;
}

/** `-nic` for a network mode: none, a user-mode net restricted to the guest, or plain user-mode NAT. */
export function nicOption(network: NetworkMode): string {
  if (network === 'none') return 'none';
  if (network === 'isolated') return 'user,model=virtio-net-pci,restrict=on';
  return 'user,model=virtio-net-pci';
}

/** The full argument list (without the program). */
export function qemuArgs(settings: MachineSettings, paths: QemuRunPaths): string[] {
  const args = [
    '-name', `guest=${escapeOption(settings.name)}`,
    '-machine', `q35,accel=${paths.accel}`,
    ...(paths.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-smp', String(settings.cpus),
    '-m', String(settings.memoryMiB),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-serial', `file:${paths.consoleLogPath}`,
    '-qmp', `unix:${escapeOption(paths.qmpSocketPath)},server=on,wait=off`,
    '-monitor', 'none',
    '-nic', nicOption(settings.network),
  ];
  settings.disks.forEach((disk, i) => {
    args.push('-drive', driveOption(disk, i, paths.overlayPaths.get(i)));
    const bootIndex = settings.boot.mode === 'disk' && i === 0 ? ',bootindex=0' : '';
    args.push('-device', `virtio-blk-pci,drive=disk${i}${bootIndex}`);
  });
  const boot = settings.boot;
  if (boot.mode === 'kernel') {
    // A test kernel that panics or reboots ends the machine instead of looping.
    args.push('-no-reboot', '-kernel', resolve(boot.kernelPath));
    if (boot.initrdPath) args.push('-initrd', resolve(boot.initrdPath));
    args.push('-append', boot.append ?? 'console=ttyS0 quiet panic=-1');
  } else if (boot.firmwarePath) {
    args.push('-bios', resolve(boot.firmwarePath));
  }
  return args;
}
