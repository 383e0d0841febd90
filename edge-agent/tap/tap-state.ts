/** What a tap-mode disk remembers between runs (docs/agent-state.md, "Tap mode"). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/fsutil.ts';

export interface TapState {
  version: 1;
  mode: 'tap';
  path: string;
  diskBytes: number;
  /** First seq the process server does not hold, as last acknowledged. */
  ackedNextSeq: number;
  initialSync: { done: boolean; cursorBlock: number; sendZeros: boolean };
  /** The change log overflowed: writes are tracked in the dirty bitmap until a resync ends. */
  bitmapMode: boolean;
  /** Where the resync's hash comparison goes on (the block after the last range it finished). */
  resyncCursorBlock?: number;
  /** The kernel boot the agent last ran in, and whether it stopped cleanly. */
  bootId: string;
  cleanShutdown: boolean;
}

export function newTapState(path: string, diskBytes: number, bootId: string): TapState {
  return { version: 1, mode: 'tap', path, diskBytes, ackedNextSeq: 1, initialSync: { done: false, cursorBlock: 0, sendZeros: false }, bitmapMode: false, bootId, cleanShutdown: false };
}

export function loadTapState(dir: string): TapState | undefined {
  try {
    const v = JSON.parse(readFileSync(join(dir, 'tap-state.json'), 'utf8')) as TapState;
    if (v.version !== 1 || v.mode !== 'tap') throw new Error(`unsupported tap state in ${dir}`);
    return v;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function saveTapState(dir: string, s: TapState): Promise<void> {
  await writeFileAtomic(join(dir, 'tap-state.json'), JSON.stringify(s, null, 1));
}

/** Identifies the running kernel boot; a change means the host restarted. */
export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
