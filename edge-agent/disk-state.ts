/** What the agent remembers about one disk between runs (docs/agent-state.md). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fsutil.ts';

export interface DiskState {
  version: 1;
  path: string;
  diskBytes: number;
  /** Next sequence number this disk's stream will use. */
  nextSeq: number;
  /**
   * The full pass. `sendZeros`: the replica may hold older data (downstream lost what it had
   * acknowledged, or the stream existed before this state), so zero blocks are sent too.
   * `resync`: it is a resynchronisation of a disk that had been in sync.
   */
  initialSync: { done: boolean; cursorBlock: number; sendZeros?: boolean; resync?: boolean };
  lastPointSeq?: number;
  lastScanTime?: string;
}

export function newDiskState(path: string, diskBytes: number): DiskState {
  return { version: 1, path, diskBytes, nextSeq: 1, initialSync: { done: false, cursorBlock: 0 } };
}

export async function loadDiskState(dir: string): Promise<DiskState | undefined> {
  try {
    const v = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as DiskState;
    if (v.version !== 1) throw new Error(`unsupported agent state version ${v.version} in ${dir}`);
    return v;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function saveDiskState(dir: string, s: DiskState): Promise<void> {
  await writeFileAtomic(join(dir, 'state.json'), JSON.stringify(s, null, 1));
}
