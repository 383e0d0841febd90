/**
 * Materialising a point-in-time reader into a new disk image: raw, written in large chunks
 * with reads ahead of the writes and all-zero chunks left as holes; or qcow2, through
 * `qemu-img convert` from a temporary raw image. The image appears only when complete
 * (temporary name, fsync, rename).
 */
import { execFile } from 'node:child_process';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TidemarkError } from '../../core/errors.ts';
import { syncDir } from '../../core/fsutil.ts';
import type { PointInTimeReader } from '../point-reader.ts';
import { isAllZero } from '../replica.ts';

export type ImageFormat = 'raw' | 'qcow2';

/** Bytes read per chunk. */
export const MATERIALISE_CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks read ahead of the one being written. */
const READS_AHEAD = 3;

export interface MaterialiseProgress {
  doneBytes: number;
  totalBytes: number;
  seconds: number;
}

export interface MaterialiseOptions {
  format?: ImageFormat;
  /** Called about once a second and at the end. */
  onProgress?: (p: MaterialiseProgress) => void;
  signal?: AbortSignal;
  qemuImgPath?: string;
}

export interface MaterialiseResult {
  path: string;
  format: ImageFormat;
  sizeBytes: number;
  /** Bytes actually written (the rest are holes). */
  writtenBytes: number;
  seconds: number;
}

/** `qemu-img` failed or is missing. */
export class MaterialiseError extends TidemarkError {}

/** Writes the disk `reader` shows to `path` (which must not be in use). */
export async function materialise(reader: Pick<PointInTimeReader, 'sizeBytes' | 'read'>, path: string, opts: MaterialiseOptions = {}): Promise<MaterialiseResult> {
  const started = performance.now();
  const format = opts.format ?? 'raw';
  const rawPath = format === 'raw' ? `${path}.tmp-${process.pid}` : `${path}.raw.tmp-${process.pid}`;
  let writtenBytes: number;
  try {
    writtenBytes = await writeRaw(reader, rawPath, started, opts);
    if (format === 'qcow2') {
      const tmp = `${path}.tmp-${process.pid}`;
      try {
        await qemuImgConvert(opts.qemuImgPath ?? 'qemu-img', rawPath, tmp, opts.signal);
        await rename(tmp, path);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      } finally {
        await unlink(rawPath).catch(() => undefined);
      }
    } else {
      await rename(rawPath, path);
    }
  } catch (err) {
    await unlink(rawPath).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
  return { path, format, sizeBytes: reader.sizeBytes, writtenBytes, seconds: (performance.now() - started) / 1000 };
}

async function writeRaw(reader: Pick<PointInTimeReader, 'sizeBytes' | 'read'>, path: string, started: number, opts: MaterialiseOptions): Promise<number> {
  const total = reader.sizeBytes;
  const fh = await open(path, 'wx', 0o600);
  let written = 0;
  try {
    let next = 0;
    const queue: Array<Promise<Buffer>> = [];
    const fill = () => {
      while (queue.length < READS_AHEAD && next < total) {
        const n = Math.min(MATERIALISE_CHUNK_BYTES, total - next);
        const p = reader.read(next, n);
        p.catch(() => undefined);
        queue.push(p);
        next += n;
      }
    };
    let at = 0;
    let reportedAt = performance.now();
    fill();
    while (queue.length) {
      opts.signal?.throwIfAborted();
      const chunk = await queue.shift()!;
      fill();
      if (!isAllZero(chunk)) {
        for (let done = 0; done < chunk.length; ) done += (await fh.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
        written += chunk.length;
      }
      at += chunk.length;
      const now = performance.now();
      if (opts.onProgress && now - reportedAt >= 1000) {
        reportedAt = now;
        opts.onProgress({ doneBytes: at, totalBytes: total, seconds: (now - started) / 1000 });
      }
    }
    await fh.truncate(total);
    await fh.sync();
  } finally {
    await fh.close();
  }
  opts.onProgress?.({ doneBytes: total, totalBytes: total, seconds: (performance.now() - started) / 1000 });
  return written;
}

function qemuImgConvert(qemuImg: string, from: string, to: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(qemuImg, ['convert', '-f', 'raw', '-O', 'qcow2', from, to], { signal, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new MaterialiseError(`qemu-img convert to qcow2 failed: ${missing ? 'qemu-img not found' : String(stderr).trim() || err.message}`, {
        cause: err,
        hint: missing ? "install qemu-utils, or ask for format 'raw'" : 'check free space in the target folder',
      }));
    });
  });
}
