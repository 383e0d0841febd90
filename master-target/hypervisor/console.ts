/**
 * Waiting for a pattern on a machine's serial console, which QEMU writes to a file: the file
 * is read as it grows (latin1, so any byte is kept) and the tail is searched.
 */
import { open } from 'node:fs/promises';

/** How often the console file is read while waiting. */
export const CONSOLE_POLL_MS = 100;
/** The most console text kept for matching (a pattern spanning more is not found). */
const TAIL_CHARS = 1 << 20;

export type ConsoleWaitOutcome =
  | { kind: 'matched'; text: string }
  | { kind: 'timeout' }
  | { kind: 'stopped' };

/** A string pattern matches literally. */
export function toRegExp(pattern: RegExp | string): RegExp {
  return typeof pattern === 'string' ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : pattern;
}

/**
 * Reads `path` until `pattern` appears (`matched`), `timeoutMs` passes (`timeout`), or
 * `isRunning()` turns false and a last read finds nothing (`stopped`). Throws if `signal` aborts.
 */
export async function waitForConsoleText(
  path: string,
  pattern: RegExp | string,
  timeoutMs: number,
  isRunning: () => boolean,
  signal?: AbortSignal,
): Promise<ConsoleWaitOutcome> {
  const re = toRegExp(pattern);
  const deadline = Date.now() + timeoutMs;
  let offset = 0;
  let tail = '';
  const readMore = async (): Promise<string | undefined> => {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch {
      return undefined; // not created yet
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        tail = (tail + buf.toString('latin1', 0, bytesRead)).slice(-TAIL_CHARS);
      }
    } finally {
      await fh.close();
    }
    return re.exec(tail)?.[0];
  };
  for (;;) {
    signal?.throwIfAborted();
    const running = isRunning();
    const match = await readMore();
    if (match !== undefined) return { kind: 'matched', text: match };
    if (!running) return { kind: 'stopped' };
    if (Date.now() >= deadline) return { kind: 'timeout' };
    await new Promise((r) => setTimeout(r, Math.min(CONSOLE_POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}
