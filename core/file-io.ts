/** Positional file writes that take many buffers at once. */
import { writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Most buffers one writev takes (Linux IOV_MAX). */
const MAX_IOV = 1024;

/**
 * Walks `bufs` in writev-sized batches, going on after the last byte written when a call
 * writes less than asked. The caller writes each yielded batch and passes back the bytes written.
 */
function* batches(bufs: Buffer[], position: number): Generator<{ batch: Buffer[]; position: number }, void, number> {
  let i = 0;
  let skip = 0;
  while (i < bufs.length) {
    const batch = bufs.slice(i, i + MAX_IOV);
    if (skip) batch[0] = batch[0].subarray(skip);
    const want = batch.reduce((n, b) => n + b.length, 0);
    const bytesWritten: number = yield { batch, position };
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

/** Writes `bufs` back to back at `position`, in as few writev calls as the kernel allows. */
export async function writevAll(fh: FileHandle, bufs: Buffer[], position: number): Promise<void> {
  const it = batches(bufs, position);
  for (let step = it.next(0); !step.done; ) {
    const { bytesWritten } = await fh.writev(step.value.batch, step.value.position);
    step = it.next(bytesWritten);
  }
}

/** Like `writevAll`, with synchronous calls on a file descriptor: for small pieces, cheaper than the thread pool. */
export function writevAllSync(fd: number, bufs: Buffer[], position: number): void {
  const it = batches(bufs, position);
  for (let step = it.next(0); !step.done; ) step = it.next(writevSync(fd, step.value.batch, step.value.position));
}
