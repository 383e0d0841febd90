/**
 * Copy-on-write overlays: a qcow2 file backed by a disk source, so the guest writes to the
 * overlay and never to the source. For an `nbd://` source the export must be served while the
 * overlay is created (qemu-img reads its size) and while the machine runs.
 */
import { resolve } from 'node:path';
import type { DiskSettings } from './adapter.ts';
import { HypervisorError } from './errors.ts';
import { runCommand } from './process.ts';
import { isNbdSource } from './qemu-args.ts';

/** How long `qemu-img create` may take (it connects to the NBD server). */
export const OVERLAY_CREATE_TIMEOUT_MS = 30_000;

/** `qemu-img create -f qcow2 -b SOURCE -F FORMAT OVERLAY`. */
export async function createOverlay(disk: DiskSettings, overlayPath: string, qemuImgPath = 'qemu-img'): Promise<void> {
  const nbd = isNbdSource(disk.source);
  const backing = nbd ? disk.source : resolve(disk.source);
  const format = nbd ? 'raw' : (disk.format ?? 'raw');
  const args = ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', format, overlayPath];
  const result = await runCommand(qemuImgPath, args, OVERLAY_CREATE_TIMEOUT_MS);
  if (result.code !== 0) {
    throw new HypervisorError(`cannot create an overlay over ${disk.source}: ${result.stderr.trim() || `exit code ${result.code}`}`, {
      hint: nbd ? 'check that the view is open and its nbd:// URI answers (nbdinfo URI)' : 'check that the image exists and is readable',
    });
  }
}
