/**
 * The replica: a sparse file holding the disk at the newest committed seq. Reads past its
 * end give zeros; zeroing writes in bounded chunks.
 */
import { constants, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writevAll, writevAllSync } from '../core/file-io.ts';

/** Reads and writes at most this long use synchronous calls: cheaper than a trip to the thread pool. */
const SYNC_READ_BYTES = 128 * 1024;
const SYNC_WRITE_BYTES = 128 * 1024;

/** Largest piece read or written in one call. */
export const CHUNK_BYTES = 1024 * 1024;
/** A buffer of zeros, CHUNK_BYTES long, never written to. */
export const ZEROS = Buffer.alloc(CHUNK_BYTES);

export function isAllZero(b: Buffer): boolean {
  for (let at = 0; at < b.length; at += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, b.length - at);
    if (!b.subarray(at, at + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/** A random-access disk image file (the replica, or an export's copy). */
export class ImageFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    public sizeBytes: number,
  ) {}

  /** Opens `path` for reading and writing, creating it empty when missing. */
  static async open(path: string): Promise<ImageFile> {
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    const { size } = await fh.stat();
    return new ImageFile(path, fh, size);
  }

  /** `length` bytes at `offset`; bytes past the end of the file read as zeros. */
  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, offset);
    return out;
  }

  /** Fills `out` with the bytes at `offset`, in one read where the kernel allows; bytes past the end read as zeros. */
  async readInto(out: Buffer, offset: number): Promise<void> {
    const length = out.length;
    const inFile = Math.max(0, Math.min(length, this.sizeBytes - offset));
    let done = 0;
    while (done < inFile) {
      const n =
        inFile - done <= SYNC_READ_BYTES
          ? readSync(this.fh.fd, out, done, inFile - done, offset + done)
          : (await this.fh.read(out, done, inFile - done, offset + done)).bytesRead;
      if (n === 0) break;
      done += n;
    }
    if (done < length) out.fill(0, done);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    await this.writev(offset, [data]);
  }

  /** Writes `bufs` back to back from `offset` (one gathered write). */
  async writev(offset: number, bufs: Buffer[]): Promise<void> {
    const bytes = bufs.reduce((n, b) => n + b.length, 0);
    if (bytes <= SYNC_WRITE_BYTES) writevAllSync(this.fh.fd, bufs, offset);
    else await writevAll(this.fh, bufs, offset);
    const end = offset + bytes;
    if (end > this.sizeBytes) this.sizeBytes = end;
  }

  async zero(offset: number, length: number): Promise<void> {
    for (let at = 0; at < length; at += CHUNK_BYTES) {
      await this.write(offset + at, ZEROS.subarray(0, Math.min(CHUNK_BYTES, length - at)));
    }
  }

  async resize(bytes: number): Promise<void> {
    await this.fh.truncate(bytes);
    this.sizeBytes = bytes;
  }

  async sync(): Promise<void> {
    await this.fh.sync();
  }

  /** fdatasync: the data and the size, without the timestamps. */
  async datasync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
