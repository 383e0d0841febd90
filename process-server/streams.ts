/** All streams of one process server, opened lazily and from the spool folders at start. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidName } from '../core/names.ts';
import type { Logger } from '../core/log.ts';
import { Mutex } from '../core/mutex.ts';
import { Stream, type MasterTargetLink } from './stream.ts';

export class Streams {
  private readonly byKey = new Map<string, Stream>();
  private readonly openLock = new Mutex();

  constructor(private readonly spoolDir: string, private readonly mt: MasterTargetLink, private readonly log: Logger) {}

  /** Reopens every stream that has a spool folder, so pending frames ship after a restart. */
  async openExisting(): Promise<void> {
    let machines: string[] = [];
    try {
      machines = await readdir(this.spoolDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const m of machines.filter(isValidName)) {
      for (const d of (await readdir(join(this.spoolDir, m))).filter(isValidName)) await this.get(m, d);
    }
  }

  async get(machine: string, disk: string): Promise<Stream> {
    const key = `${machine}/${disk}`;
    const have = this.byKey.get(key);
    if (have) return have;
    return this.openLock.run(async () => {
      const again = this.byKey.get(key);
      if (again) return again;
      const s = await Stream.open(machine, disk, join(this.spoolDir, machine, disk), this.mt, this.log);
      this.byKey.set(key, s);
      s.start();
      return s;
    });
  }

  all(): Stream[] {
    return [...this.byKey.values()].sort((a, b) => (a.machine + '/' + a.disk).localeCompare(b.machine + '/' + b.disk));
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((s) => s.stop()));
  }
}
