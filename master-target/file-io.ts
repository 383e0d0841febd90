/** Positional file writes that take many buffers at once. */
import { writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Most buffers one writev takes (Linux IOV_MAX). */
const MAX_IOV = 1024;

/** Writes `bufs` back to back at `position`, in as few writev calls as the kernel allows. */
export async function writevAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  let i = 0;
  let skip = 0;
  while (i < bufs.length) {
    const batch = bufs.slice(i, i + MAX_IOV);
    if (skip) batch[0] = batch[0].subarray(skip);
    const want = batch.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await fh.writev(batch, position);
    position += bytesWritten;
    if (bytesWritten === want) {
      i += batch.length;
      skip = 0;
      continue;
    }
    if (bytesWritten <= 0) throw new Error(`writev wrote nothing at byte ${position}`);
    // A short write: go on after the last byte written.
    let left = bytesWritten;
    let k = 0;
    while (left >= batch[k].length) left -= batch[k++].length;
    if (k > 0) {
      i += k;
      skip = left;
    } else skip += left;
  }
}

/** Like `writevAll`, with synchronous calls on a file descriptor: for small pieces, cheaper than the thread pool. */
export function writevAllSync(fd: number, bufs: Buffer[], position: number): void {
  let i = 0;
  let skip = 0;
  while (i < bufs.length) {
    const batch = bufs.slice(i, i + MAX_IOV);
    if (skip) batch[0] = batch[0].subarray(skip);
    const want = batch.reduce((n, b) => n + b.length, 0);
    const bytesWritten = writevSync(fd, batch, position);
    position += bytesWritten;
    if (bytesWritten === want) {
      i += batch.length;
      skip = 0;
      continue;
    }
    if (bytesWritten <= 0) throw new Error(`writev wrote nothing at byte ${position}`);
    let left = bytesWritten;
    let k = 0;
    while (left >= batch[k].length) left -= batch[k++].length;
    if (k > 0) {
      i += k;
      skip = left;
    } else skip += left;
  }
}
