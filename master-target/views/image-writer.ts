/**
 * Writing a new disk image fast, with holes where nothing is written. Whole 4 KiB blocks held
 * in the writer's page-aligned buffers go through a second descriptor opened with O_DIRECT:
 * they skip the page cache, so the device writes while the data is produced and the final
 * fdatasync has only metadata and the device cache to flush (buffered, a large image is copied
 * into the page cache and written back only at that fdatasync). Partial blocks are kept and
 * written through the ordinary descriptor after every direct write has ended, so the two never
 * touch one page at the same time. Where the filesystem refuses O_DIRECT, at open or at the
 * first write, everything goes the ordinary way, with a background fdatasync every so often.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Alignment of offset, length and memory that every O_DIRECT write here keeps. */
export const DIRECT_ALIGN_BYTES = 4096;
/** Buffered bytes written after which a background fdatasync starts (the fallback only). */
const SYNC_EVERY_BYTES = 512 * 1024 * 1024;
const WASM_PAGE_BYTES = 64 * 1024;

/** The part of WebAssembly's JavaScript API used here (the project's type libraries leave it out). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => WasmMemory } }).WebAssembly.Memory;

export interface ImageWriterOptions {
  /** Try O_DIRECT for whole blocks (default true). */
  direct?: boolean;
  /** Start background fdatasyncs while writing buffered (for an image that will be synced). */
  syncWhileWriting?: boolean;
}

/** Bytes written each way, for reports and tests. */
export interface ImageWriterCounts {
  directBytes: number;
  bufferedBytes: number;
}

export class ImageWriter {
  private directFh?: FileHandle;
  /** O_DIRECT given up before any direct write (no aligned buffers). */
  private directOff = false;
  private memory?: WasmMemory;
  private directInFlight = 0;
  private directDrained?: () => void;
  /** Set when O_DIRECT was given up during the run: buffered writes wait for the direct ones to end. */
  private switching?: Promise<void>;
  /** Partial blocks, written at finish(). */
  private readonly deferred: Array<{ data: Buffer; position: number }> = [];
  private bufferedSinceSync = 0;
  private syncing?: Promise<void>;
  private syncFailed?: unknown;
  readonly counts: ImageWriterCounts = { directBytes: 0, bufferedBytes: 0 };

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly syncWhileWriting: boolean,
  ) {}

  /**
   * Creates `path` (it must not exist) with `sizeBytes` of holes.
   *
   * @example
   * const w = await ImageWriter.create('/srv/images/disk0.img.tmp', 1 << 30);
   * const [buf] = w.buffers(1, 8 << 20);
   * // fill buf, then
   * await w.write(buf, 0);
   * await w.finish(); // everything written, and on stable storage
   * await w.close();
   */
  static async create(path: string, sizeBytes: number, opts: ImageWriterOptions = {}): Promise<ImageWriter> {
    const fh = await open(path, 'wx', 0o600);
    const w = new ImageWriter(path, fh, opts.syncWhileWriting ?? false);
    try {
      await fh.truncate(sizeBytes);
      if (opts.direct ?? true) w.directFh = await openDirect(path);
    } catch (err) {
      await fh.close();
      throw err;
    }
    return w;
  }

  /** Whether whole blocks currently go through O_DIRECT. */
  get direct(): boolean {
    return this.directFh !== undefined && !this.directOff && !this.switching;
  }

  /**
   * `count` buffers of `bytes` each, page-aligned where the runtime allows (a WebAssembly
   * memory is mapped on a page boundary): only blocks of these go direct. Call once.
   */
  buffers(count: number, bytes: number): Buffer[] {
    const stride = Math.ceil(bytes / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES;
    try {
      this.memory = new WasmMemory({ initial: Math.max(1, Math.ceil((stride * count) / WASM_PAGE_BYTES)) });
    } catch {
      // No room for the mapping: ordinary buffers, written the ordinary way.
      this.directOff = true;
      return Array.from({ length: count }, () => Buffer.allocUnsafe(bytes));
    }
    return Array.from({ length: count }, (_, k) => Buffer.from(this.memory!.buffer, k * stride, bytes));
  }

  /**
   * Writes `data` at `position`. Calls may overlap; their ranges must not. While writes go
   * direct, what cannot (partial blocks, other buffers) is copied and written at the end.
   */
  async write(data: Buffer, position: number): Promise<void> {
    if (data.length === 0) return;
    if (!this.direct) return this.writeBuffered(data, position);
    if (data.buffer !== this.memory?.buffer || (data.byteOffset - position) % DIRECT_ALIGN_BYTES !== 0) return this.defer(data, position);
    // The memory and the file agree on alignment: the whole blocks go direct, the ends wait.
    const head = (DIRECT_ALIGN_BYTES - (position % DIRECT_ALIGN_BYTES)) % DIRECT_ALIGN_BYTES;
    const start = Math.min(head, data.length);
    const end = start + Math.floor((data.length - start) / DIRECT_ALIGN_BYTES) * DIRECT_ALIGN_BYTES;
    if (start > 0) this.defer(data.subarray(0, start), position);
    if (end < data.length) this.defer(data.subarray(end), position + end);
    if (end > start) await this.writeDirect(data.subarray(start, end), position + start);
  }

  /** Writes what was deferred and, with `sync` (the default), makes the image durable (fdatasync). */
  async finish(sync = true): Promise<void> {
    await this.switching;
    for (const d of this.deferred.splice(0)) await this.writeBuffered(d.data, d.position, false);
    await this.syncing;
    if (this.syncFailed) throw this.syncFailed;
    if (sync) await this.fh.datasync();
  }

  /** Closes both descriptors once nothing runs on them; call after every write settled. */
  async close(): Promise<void> {
    await this.syncing;
    await this.directFh?.close();
    await this.fh.close();
  }

  private defer(data: Buffer, position: number): void {
    // A copy: the caller reuses its buffer.
    this.deferred.push({ data: Buffer.from(data), position });
  }

  private async writeDirect(data: Buffer, position: number): Promise<void> {
    this.directInFlight++;
    try {
      await writeAll(this.directFh!, data, position);
      this.counts.directBytes += data.length;
      return;
    } catch (err) {
      // EINVAL: the filesystem takes O_DIRECT at open but not these writes. Nothing was written.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      this.switching ??= new Promise<void>((resolve) => (this.directDrained = resolve));
    } finally {
      if (--this.directInFlight === 0) this.directDrained?.();
    }
    await this.writeBuffered(data, position);
  }

  private async writeBuffered(data: Buffer, position: number, sync = true): Promise<void> {
    await this.switching;
    await writeAll(this.fh, data, position);
    this.counts.bufferedBytes += data.length;
    if (!sync || !this.syncWhileWriting) return;
    this.bufferedSinceSync += data.length;
    if (this.bufferedSinceSync < SYNC_EVERY_BYTES || this.syncing) return;
    this.bufferedSinceSync = 0;
    this.syncing = this.fh
      .datasync()
      .catch((err: unknown) => void (this.syncFailed = err))
      .finally(() => (this.syncing = undefined));
  }
}

/** The file opened again with O_DIRECT, or undefined where the filesystem refuses it. */
async function openDirect(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, constants.O_WRONLY | constants.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write wrote nothing at byte ${position + done}`);
    done += bytesWritten;
  }
}
