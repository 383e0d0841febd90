/**
 * Which process server ships each machine's streams to this master target, from the
 * `protection.enable` and `protection.disable` commands, kept in `ingest-assignments.json`
 * (format version 1: `{ "v": 1, "machines": [{ "machineId", "machineName", "processServerId", "issuedAt" }] }`)
 * so that a restart still knows. The API lets a process server send only these machines'
 * batches (`master-target/peer-access.ts`). An older command than the one applied is ignored.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/fsutil.ts';
import type { ProtectionEnableCommand } from '../../core/control-plane/protocol.ts';

interface IngestAssignment {
  machineId: string;
  machineName: string;
  processServerId: string;
  issuedAt: string;
}

const FILE = 'ingest-assignments.json';

export class IngestAssignments {
  readonly #byId = new Map<string, IngestAssignment>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<IngestAssignments> {
    const a = new IngestAssignments(dir);
    const text = await readFile(join(dir, FILE), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text !== undefined) {
      const f = JSON.parse(text) as { v: number; machines: IngestAssignment[] };
      if (f.v !== 1) throw new Error(`${join(dir, FILE)} has unknown format version ${String(f.v)}`);
      for (const m of f.machines) a.#byId.set(m.machineId, m);
    }
    return a;
  }

  /** The process server id that ships the machine named `machineName`, if it is protected here. */
  processServerOf(machineName: string): string | undefined {
    for (const a of this.#byId.values()) if (a.machineName === machineName) return a.processServerId;
    return undefined;
  }

  async enable(cmd: ProtectionEnableCommand): Promise<void> {
    const have = this.#byId.get(cmd.machine.id);
    if (have && have.issuedAt > cmd.issuedAt) return;
    this.#byId.set(cmd.machine.id, { machineId: cmd.machine.id, machineName: cmd.machine.name, processServerId: cmd.processServer.id, issuedAt: cmd.issuedAt });
    await this.#save();
  }

  async disable(machineId: string): Promise<void> {
    if (this.#byId.delete(machineId)) await this.#save();
  }

  async #save(): Promise<void> {
    await writeFileAtomic(join(this.dir, FILE), JSON.stringify({ v: 1, machines: [...this.#byId.values()] }, null, 2) + '\n');
  }
}
