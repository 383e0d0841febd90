/** A protected disk as the agent reads it: a regular file or a block device. */
import { readSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { UsageError } from '../core/errors.ts';

export interface DiskSource {
  path: string;
  sizeBytes: number;
  fh: FileHandle;
}

/** Size of a block device from sysfs (Node has no ioctl), in bytes. */
async function blockDeviceBytes(rdev: number): Promise<number> {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim());
  return sectors * 512;
}

export async function openDisk(path: string): Promise<DiskSource> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (cause) {
    throw new UsageError(`cannot open disk ${path}: ${(cause as Error).message}`, { cause, hint: 'give a readable file or block device with --disk' });
  }
  const st = await fh.stat();
  let sizeBytes: number;
  if (st.isFile()) sizeBytes = st.size;
  else if (st.isBlockDevice()) sizeBytes = await blockDeviceBytes(st.rdev);
  else {
    await fh.close();
    throw new UsageError(`${path} is neither a file nor a block device`);
  }
  return { path, sizeBytes, fh };
}

/** Reads exactly `length` bytes at `position` (short only at the end of the disk), synchronously. */
export function readAtSync(src: DiskSource, buf: Buffer, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const bytesRead = readSync(src.fh.fd, buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
