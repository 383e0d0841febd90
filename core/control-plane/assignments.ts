/**
 * The machines the control plane assigned to a process server or master target
 * (`protection.enable`), kept in `assignments.json` (format version 1) so that heartbeats and
 * point reports name the right machine and disk ids after a restart. Applying the same
 * command twice changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsutil.ts';
import type { MachineSpec, PolicySpec, ProtectionEnableCommand, ServerRef } from './protocol.ts';

export interface Assignment {
  machine: MachineSpec;
  policy: PolicySpec;
  masterTarget: ServerRef;
  /** The command that last changed this assignment. */
  commandId: string;
  issuedAt: string;
}

interface AssignmentsFile {
  v: 1;
  machines: Assignment[];
}

const FILE = 'assignments.json';

export class Assignments {
  readonly #byId = new Map<string, Assignment>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<Assignments> {
    const a = new Assignments(dir);
    let text: string | undefined;
    try {
      text = await readFile(join(dir, FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      const f = JSON.parse(text) as AssignmentsFile;
      if (f.v !== 1) throw new Error(`${join(dir, FILE)} has unknown format version ${String(f.v)}`);
      for (const m of f.machines) a.#byId.set(m.machine.id, m);
    }
    return a;
  }

  /** Records an enable command; an older command than the one applied is ignored. True if anything changed. */
  async enable(cmd: ProtectionEnableCommand): Promise<boolean> {
    const have = this.#byId.get(cmd.machine.id);
    if (have && (have.commandId === cmd.id || have.issuedAt > cmd.issuedAt)) return false;
    this.#byId.set(cmd.machine.id, { machine: cmd.machine, policy: cmd.policy, masterTarget: cmd.masterTarget, commandId: cmd.id, issuedAt: cmd.issuedAt });
    await this.#save();
    return true;
  }

  /** Forgets a machine. True if it was assigned. */
  async disable(machineId: string): Promise<boolean> {
    if (!this.#byId.delete(machineId)) return false;
    await this.#save();
    return true;
  }

  list(): Assignment[] {
    return [...this.#byId.values()];
  }

  /** The assignment of the machine named `name` (stream names are machine names). */
  byMachineName(name: string): Assignment | undefined {
    return this.list().find((a) => a.machine.name === name);
  }

  async #save(): Promise<void> {
    const f: AssignmentsFile = { v: 1, machines: this.list() };
    await writeFileAtomic(join(this.dir, FILE), JSON.stringify(f, null, 2) + '\n');
  }
}
