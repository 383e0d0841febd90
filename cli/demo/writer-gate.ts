/**
 * Keeps a writer and the agent's scans apart, the way fsfreeze does for a file system: the
 * agent's freeze command waits until no write is in progress and blocks new ones until thaw.
 * Both sides announce themselves with a file, then check the other's (so they cannot both
 * proceed). The freeze command also appends the writer's current generation to a log, which
 * tells which state of the disk each recovery point holds.
 */
import { existsSync } from 'node:fs';
import { writeFile, unlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export class WriterGate {
  readonly frozenFile: string;
  readonly writingFile: string;
  readonly generationFile: string;
  readonly freezeLog: string;

  constructor(dir: string) {
    this.frozenFile = join(dir, 'gate.frozen');
    this.writingFile = join(dir, 'gate.writing');
    this.generationFile = join(dir, 'gate.generation');
    this.freezeLog = join(dir, 'gate.freezes');
  }

  get freezeCmd(): string {
    return `touch '${this.frozenFile}'; while [ -e '${this.writingFile}' ]; do sleep 0.01; done; cat '${this.generationFile}' >> '${this.freezeLog}'; echo >> '${this.freezeLog}'`;
  }

  get thawCmd(): string {
    return `rm -f '${this.frozenFile}'`;
  }

  async init(): Promise<void> {
    await writeFile(this.generationFile, '0');
    await writeFile(this.freezeLog, '');
  }

  /** Runs `write` while no scan is reading, then records `generation` as the disk's state. */
  async write(generation: number, write: () => Promise<void>): Promise<void> {
    for (;;) {
      while (existsSync(this.frozenFile)) await new Promise((r) => setTimeout(r, 10));
      await writeFile(this.writingFile, '');
      if (!existsSync(this.frozenFile)) break;
      await unlink(this.writingFile);
    }
    try {
      await write();
      await writeFile(this.generationFile, String(generation));
    } finally {
      await unlink(this.writingFile);
    }
  }

  /** The generation each frozen scan saw, in order. */
  async generations(): Promise<number[]> {
    return (await readFile(this.freezeLog, 'utf8')).split('\n').filter((l) => l.trim() !== '').map(Number);
  }
}
