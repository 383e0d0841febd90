/**
 * The one fact about a stream the spool alone cannot give back after a restart once it is
 * empty: how far the master target has acknowledged. It is written before the last pending
 * frames leave the spool, so whenever the spool is empty it is not behind the truth; while a
 * frame is pending, the spool's newest frame gives the position and this file may lag.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fsutil.ts';

export interface PersistedStream {
  version: 1;
  /** First seq the master target does not hold yet. */
  appliedNextSeq: number;
}

const FILE = 'stream.json';

export async function loadStreamState(dir: string): Promise<PersistedStream | undefined> {
  try {
    const v = JSON.parse(await readFile(join(dir, FILE), 'utf8')) as PersistedStream;
    if (v.version !== 1 || !Number.isSafeInteger(v.appliedNextSeq) || v.appliedNextSeq < 1) {
      throw new Error(`unreadable ${FILE} in ${dir}`);
    }
    return v;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function saveStreamState(dir: string, s: PersistedStream): Promise<void> {
  await writeFileAtomic(join(dir, FILE), JSON.stringify(s));
}
