/**
 * An NBD export over a regular file: the reference backend, used by tests and benchmarks.
 *
 * Reads and writes up to `syncMaxBytes` use synchronous calls while they stay fast (see
 * SyncGate): for cached data that is cheaper than a trip through the thread pool. Larger
 * requests, anything that waits for the disk (fdatasync), and every call while the disk is
 * slow go through the thread pool, so one slow call does not stall other connections.
 */
import { readSync, writeSync, writevSync } from 'node:fs';
import { partsFrom } from '../buffer-parts.ts';
import { open, type FileHandle } from 'node:fs/promises';
import type { NbdExport } from './export.ts';
import { NbdError } from './nbd-error.ts';
import { NbdErrno } from './protocol.ts';
import { SyncGate } from './sync-gate.ts';

/** Requests up to this size may use synchronous file calls unless told otherwise. */
export const DEFAULT_SYNC_MAX_BYTES = 1024 * 1024;
/** Zeros are written from one shared, never-modified buffer of this size. */
const ZERO_CHUNK_BYTES = 1024 * 1024;
const ZEROS = Buffer.alloc(ZERO_CHUNK_BYTES);

export interface FileExportOptions {
  /** Export name clients ask for. */
  name: string;
  description?: string;
  /** Open the file read-only and refuse writes. @default false */
  readOnly?: boolean;
  /**
   * Largest request that may be served with synchronous calls; 0 makes every call
   * asynchronous. @default DEFAULT_SYNC_MAX_BYTES (1 MiB)
   */
  syncMaxBytes?: number;
}

/** A file export; `close()` closes the file (after the server stops using it). */
export interface FileExport extends NbdExport {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Opens `path` (which must exist; its current size is the export size) as an export.
 * FLUSH and FUA use fdatasync. TRIM zeroes the range, as the replication stream applies a
 * trim as zeros so that a replica stays byte-exact. WRITE_ZEROES that may trim and reaches
 * the end of the file cuts the file and extends it again (a hole); otherwise zeros are
 * written.
 *
 * @example
 * const disk = await openFileExport('/srv/disk0.img', { name: 'disk0' });
 */
export async function openFileExport(path: string, options: FileExportOptions): Promise<FileExport> {
  const readOnly = options.readOnly ?? false;
  const syncMaxBytes = options.syncMaxBytes ?? DEFAULT_SYNC_MAX_BYTES;
  const file = await open(path, readOnly ? 'r' : 'r+');
  let sizeBytes: number;
  try {
    sizeBytes = (await file.stat()).size;
  } catch (err) {
    await file.close();
    throw err;
  }
  const fd = file.fd;
  const gate = new SyncGate(syncMaxBytes);

  const refuseIfReadOnly = () => {
    if (readOnly) throw new NbdError(NbdErrno.EPERM, `export ${options.name} is read-only`);
  };

  async function zeroRange(offset: number, length: number, mayTrim: boolean): Promise<void> {
    if (mayTrim && offset + length === sizeBytes) {
      // Cutting the tail and growing back leaves a hole that reads as zeros: no data written.
      await file.truncate(offset);
      await file.truncate(sizeBytes);
      return;
    }
    for (let done = 0; done < length; ) {
      const count = Math.min(ZERO_CHUNK_BYTES, length - done);
      await writeAll(file, ZEROS.subarray(0, count), offset + done);
      done += count;
    }
  }

  /** Fills `target` from `offset`: now if the gate allows, else through the thread pool. */
  function readInto(offset: number, target: Buffer): Promise<void> | undefined {
    if (!gate.allows(target.length)) return readAll(file, target, offset);
    const filled = gate.run(() => {
      let done = 0;
      while (done < target.length) {
        const n = readSync(fd, target, done, target.length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    });
    // Past the end of a file that shrank underneath: zeros.
    if (filled < target.length) target.fill(0, filled);
    return undefined;
  }

  return {
    path,
    name: options.name,
    description: options.description,
    sizeBytes,
    readOnly,
    // One descriptor and the kernel's page cache serve every connection.
    multiConn: true,

    read(offset, length) {
      const buffer = Buffer.allocUnsafe(length);
      const filled = readInto(offset, buffer);
      return filled ? filled.then(() => buffer) : buffer;
    },

    readInto,

    write(offset, data, fua) {
      refuseIfReadOnly();
      if (!fua && gate.allows(data.length)) {
        gate.run(() => {
          for (let done = 0; done < data.length; ) {
            done += writeSync(fd, data, done, data.length - done, offset + done);
          }
        });
        return;
      }
      return writeAll(file, data, offset).then(() => (fua ? file.datasync() : undefined));
    },

    writeParts(offset, parts, lengthBytes, fua) {
      refuseIfReadOnly();
      if (!fua && gate.allows(lengthBytes)) {
        gate.run(() => {
          for (let done = 0; done < lengthBytes; ) {
            done += writevSync(fd, done ? partsFrom(parts, done) : parts, offset + done);
          }
        });
        return;
      }
      return writevAll(file, parts, lengthBytes, offset).then(() => (fua ? file.datasync() : undefined));
    },

    flush() {
      return file.datasync();
    },

    trim(offset, length, fua) {
      refuseIfReadOnly();
      return zeroRange(offset, length, true).then(() => (fua ? file.datasync() : undefined));
    },

    writeZeroes(offset, length, fua, mayTrim) {
      refuseIfReadOnly();
      if (!fua && !(mayTrim && offset + length === sizeBytes) && gate.allows(length)) {
        gate.run(() => {
          for (let done = 0; done < length; ) {
            done += writeSync(fd, ZEROS, 0, Math.min(ZERO_CHUNK_BYTES, length - done), offset + done);
          }
        });
        return;
      }
      return zeroRange(offset, length, mayTrim).then(() => (fua ? file.datasync() : undefined));
    },

    close() {
      return file.close();
    },
  };
}

/** Fills `buffer` from `position`; bytes past the end of the file read as zeros. */
async function readAll(file: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled < buffer.length) buffer.fill(0, filled);
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function writevAll(file: FileHandle, parts: Buffer[], lengthBytes: number, position: number): Promise<void> {
  for (let done = 0; done < lengthBytes; ) {
    const { bytesWritten } = await file.writev(done ? partsFrom(parts, done) : parts, position + done);
    done += bytesWritten;
  }
}
