/**
 * Machine records on disk: one `<name>.json` per machine under a state directory, written
 * atomically, so that a restarted master target finds the machines an earlier run started.
 */
import { readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/fsutil.ts';
import { MACHINE_RECORD_VERSION, type MachineRecord } from './adapter.ts';
import { HypervisorError } from './errors.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Throws unless `name` can name a machine (and so a file and a QEMU `-name`). */
export function checkMachineName(name: string): void {
  if (!NAME.test(name)) {
    throw new HypervisorError(`invalid machine name ${JSON.stringify(name)}`, {
      hint: 'use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    });
  }
}

export class MachineStore {
  readonly dir: string;
  /** Writes of each machine's file, in call order: a late save never undoes a newer one or a removal. */
  private readonly queues = new Map<string, Promise<void>>();
  constructor(dir: string) {
    this.dir = dir;
  }

  /** Where a file of machine `name` with `suffix` lives (`.json`, `.qmp`, `.console.log`, ...). */
  pathOf(name: string, suffix: string): string {
    return join(this.dir, `${name}${suffix}`);
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Writes the record as it is now, after any earlier write of the same machine. */
  save(record: MachineRecord): Promise<void> {
    const text = JSON.stringify(record, null, 2) + '\n';
    return this.enqueue(record.name, () => writeFileAtomic(this.pathOf(record.name, '.json'), text));
  }

  remove(name: string): Promise<void> {
    return this.enqueue(name, () => rm(this.pathOf(name, '.json'), { force: true }));
  }

  /** Resolves once every write of `name` asked for so far has finished (or failed). */
  async settled(name: string): Promise<void> {
    await this.queues.get(name)?.catch(() => undefined);
  }

  private enqueue(name: string, write: () => Promise<void>): Promise<void> {
    const done = (this.queues.get(name) ?? Promise.resolve()).catch(() => undefined).then(write);
    this.queues.set(name, done);
    const forget = () => { if (this.queues.get(name) === done) this.queues.delete(name); };
    done.then(forget, forget);
    return done;
  }

  /** Every record in the directory; files of an unknown version are refused with an error. */
  async loadAll(): Promise<MachineRecord[]> {
    const names = (await readdir(this.dir)).filter((f) => f.endsWith('.json')).sort();
    const out: MachineRecord[] = [];
    for (const file of names) {
      const text = await readFile(join(this.dir, file), 'utf8');
      const record = JSON.parse(text) as MachineRecord;
      if (record.version !== MACHINE_RECORD_VERSION) {
        throw new HypervisorError(`machine record ${file} has version ${record.version}, this build reads ${MACHINE_RECORD_VERSION}`, {
          hint: 'run the master target version that created it to stop and delete that machine',
        });
      }
      out.push(record);
    }
    return out;
  }
}
