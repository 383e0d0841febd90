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

  async save(record: MachineRecord): Promise<void> {
    await writeFileAtomic(this.pathOf(record.name, '.json'), JSON.stringify(record, null, 2) + '\n');
  }

  async remove(name: string): Promise<void> {
    await rm(this.pathOf(name, '.json'), { force: true });
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
