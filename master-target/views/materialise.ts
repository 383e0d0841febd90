/**
 * Materialising a point-in-time reader into a new disk image: raw, or qcow2 through
 * `qemu-img convert` reading the reader over NBD (qcow2-convert.ts). Raw: blocks never
 * written are left as holes without being read; the rest is read in large chunks, several in
 * flight, into reused page-aligned buffers, and only its non-zero blocks are written, whole
 * 4 KiB blocks with O_DIRECT where the filesystem allows (image-writer.ts). The image appears
 * only when complete and durable (temporary name, fdatasync, rename, directory sync).
 */
import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDir } from '../../core/fsutil.ts';
import { isAllZero } from '../replica.ts';
import { ImageWriter } from './image-writer.ts';
import { convertRawToQcow2, convertToQcow2, nbdIsCheaper, planInputs } from './qcow2-convert.ts';

export type ImageFormat = 'raw' | 'qcow2';

/** Bytes read per chunk. */
export const MATERIALISE_CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks being read or written at once (libuv runs four file calls at a time). */
const CHUNKS_IN_FLIGHT = 4;
/** Zero detection granularity: a zero block inside a chunk stays a hole. */
const HOLE_BYTES = 64 * 1024;

/** What materialising needs of a point-in-time reader. */
export interface MaterialiseSource {
  readonly sizeBytes: number;
  readInto(out: Buffer, offset: number): Promise<void>;
  /** The parts of a range that may hold data (ascending, merged); without it everything is read. */
  dataRanges?(offset: number, length: number): Array<[start: number, end: number]>;
}

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
  /** Write whole blocks with O_DIRECT where the filesystem allows (default true); false writes through the page cache. */
  directIo?: boolean;
}

export interface MaterialiseResult {
  path: string;
  format: ImageFormat;
  sizeBytes: number;
  /** Bytes actually written (the rest are holes); for qcow2, the size of the image file. */
  writtenBytes: number;
  /** Bytes read from the reader (the rest were known to be zero). */
  readBytes: number;
  /** Of the bytes written, those written with O_DIRECT (bypassing the page cache); raw only. */
  directBytes: number;
  seconds: number;
}

export { MaterialiseError } from './materialise-error.ts';

type Counts = Pick<MaterialiseResult, 'writtenBytes' | 'readBytes' | 'directBytes'>;

/**
 * Writes the disk `reader` shows to `path` (which must not be in use).
 *
 * @example
 * const reader = stream.openReader(seq);
 * try {
 *   await materialise(reader, '/srv/images/web-01.img', { onProgress: (p) => console.log(p.doneBytes) });
 * } finally {
 *   await reader.close();
 * }
 */
export async function materialise(reader: MaterialiseSource, path: string, opts: MaterialiseOptions = {}): Promise<MaterialiseResult> {
  const started = performance.now();
  const format = opts.format ?? 'raw';
  const tmp = `${path}.tmp-${process.pid}`;
  let counts: Counts;
  try {
    if (format === 'qcow2') {
      counts = await writeQcow2(reader, tmp, started, opts);
      // Our own sync, whatever qemu-img's cache mode did: the image must survive a crash.
      await syncFile(tmp);
    } else counts = await writeRaw(reader, tmp, started, opts);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dirname(path));
  return { path, format, sizeBytes: reader.sizeBytes, ...counts, seconds: (performance.now() - started) / 1000 };
}

async function writeQcow2(reader: MaterialiseSource, path: string, started: number, opts: MaterialiseOptions): Promise<Counts> {
  const total = reader.sizeBytes;
  const qemuImg = opts.qemuImgPath ?? 'qemu-img';
  const dataRanges = reader.dataRanges ? reader.dataRanges(0, total) : [[0, total] as [number, number]];
  const inputs = planInputs(total, dataRanges);
  // qemu takes raw slices only in whole 512-byte sectors (a qcow2 image is rounded up to them anyway).
  if (total % 512 !== 0 || !nbdIsCheaper(inputs, dataRanges.reduce((n, [s, t]) => n + t - s, 0))) {
    // The temporary raw image is thrown away: it needs no sync.
    const raw = `${path}.raw`;
    try {
      const counts = await writeRaw(reader, raw, started, opts, false);
      await convertRawToQcow2(raw, path, { qemuImg, signal: opts.signal });
      return { ...counts, writtenBytes: (await stat(path)).size, directBytes: 0 };
    } finally {
      await unlink(raw).catch(() => undefined);
    }
  }
  let reportedAt = performance.now();
  const onRead = (doneBytes: number) => {
    const now = performance.now();
    if (opts.onProgress && now - reportedAt >= 1000) {
      reportedAt = now;
      opts.onProgress({ doneBytes, totalBytes: total, seconds: (now - started) / 1000 });
    }
  };
  const result = await convertToQcow2(reader, inputs, path, { qemuImg, signal: opts.signal, onRead });
  opts.onProgress?.({ doneBytes: total, totalBytes: total, seconds: (performance.now() - started) / 1000 });
  return { writtenBytes: result.fileBytes, readBytes: result.readBytes, directBytes: 0 };
}

async function writeRaw(reader: MaterialiseSource, path: string, started: number, opts: MaterialiseOptions, durable = true): Promise<Counts> {
  const total = reader.sizeBytes;
  // The file gets its size first: everything not written below stays a hole.
  const writer = await ImageWriter.create(path, total, { direct: opts.directIo ?? true, syncWhileWriting: durable });
  let writtenBytes = 0;
  let readBytes = 0;
  let doneBytes = 0;
  let reportedAt = performance.now();
  const progress = () => {
    const now = performance.now();
    if (opts.onProgress && now - reportedAt >= 1000) {
      reportedAt = now;
      opts.onProgress({ doneBytes, totalBytes: total, seconds: (now - started) / 1000 });
    }
  };
  try {
    const bufs = writer.buffers(CHUNKS_IN_FLIGHT, Math.min(MATERIALISE_CHUNK_BYTES, Math.max(total, 1)));
    let next = 0;
    let failed = false;
    const worker = async (buf: Buffer) => {
      while (next < total && !failed) {
        opts.signal?.throwIfAborted();
        const at = next;
        const n = Math.min(MATERIALISE_CHUNK_BYTES, total - at);
        next += n;
        const ranges = reader.dataRanges ? reader.dataRanges(at, n) : [[at, at + n] as [number, number]];
        for (const [s, t] of ranges) {
          // The piece sits in the buffer where its offset falls in the chunk: chunk and buffer agree on alignment.
          const piece = buf.subarray(s - at, t - at);
          await reader.readInto(piece, s);
          readBytes += piece.length;
          for (const [ws, wt] of nonZeroRuns(piece)) {
            await writer.write(piece.subarray(ws, wt), s + ws);
            writtenBytes += wt - ws;
          }
        }
        doneBytes += n;
        progress();
      }
    };
    // Every worker stops before the file is closed, the first failure is the one reported.
    const results = await Promise.allSettled(bufs.map((buf) => worker(buf).catch((err: unknown) => {
      failed = true;
      throw err;
    })));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    await writer.finish(durable);
  } finally {
    await writer.close();
  }
  opts.onProgress?.({ doneBytes: total, totalBytes: total, seconds: (performance.now() - started) / 1000 });
  return { writtenBytes, readBytes, directBytes: writer.counts.directBytes };
}

/** The runs of `buf` made of blocks that are not all zero, as [start, end) offsets in `buf`. */
function nonZeroRuns(buf: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let at = 0; at < buf.length; at += HOLE_BYTES) {
    const end = Math.min(buf.length, at + HOLE_BYTES);
    if (isAllZero(buf.subarray(at, end))) continue;
    const prev = out.at(-1);
    if (prev && prev[1] === at) prev[1] = end;
    else out.push([at, end]);
  }
  return out;
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
