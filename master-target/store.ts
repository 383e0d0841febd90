/**
 * All disk streams under a data directory (`DIR/streams/<machine>/<disk>/`), opened and
 * recovered at startup, created on their first batch.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidName } from '../core/names.ts';
import type { Logger } from '../core/log.ts';
import { DiskStream, type SegmentLimits } from './disk-stream.ts';

export class StreamStore {
  private readonly streams = new Map<string, DiskStream>();
  private readonly opening = new Map<string, Promise<DiskStream>>();

  private constructor(
    readonly dataDir: string,
    readonly tmpDir: string,
    private readonly limits: SegmentLimits,
    private readonly log: Logger,
  ) {}

  /** Opens every stream under `dataDir` (rolling back interrupted batches) and empties `tmp/`. */
  static async open(dataDir: string, limits: SegmentLimits, log: Logger): Promise<StreamStore> {
    const tmpDir = join(dataDir, 'tmp');
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true });
    await mkdir(join(dataDir, 'streams'), { recursive: true });
    const store = new StreamStore(dataDir, tmpDir, limits, log);
    for (const machine of await readdir(join(dataDir, 'streams'))) {
      if (!isValidName(machine)) continue;
      for (const disk of await readdir(join(dataDir, 'streams', machine))) {
        if (!isValidName(disk)) continue;
        const s = await DiskStream.open(store.dirOf(machine, disk), machine, disk, limits, log);
        store.streams.set(key(machine, disk), s);
        log.info('stream opened', { machine, disk, nextSeq: s.nextSeq, diskBytes: s.diskBytes });
      }
    }
    return store;
  }

  private dirOf(machine: string, disk: string): string {
    return join(this.dataDir, 'streams', machine, disk);
  }

  get(machine: string, disk: string): DiskStream | undefined {
    return this.streams.get(key(machine, disk));
  }

  /** The stream, created when new. Names must already be valid. */
  getOrCreate(machine: string, disk: string): Promise<DiskStream> {
    const k = key(machine, disk);
    const s = this.streams.get(k);
    if (s) return Promise.resolve(s);
    let p = this.opening.get(k);
    if (!p) {
      p = DiskStream.open(this.dirOf(machine, disk), machine, disk, this.limits, this.log).then((created) => {
        this.streams.set(k, created);
        this.opening.delete(k);
        this.log.info('stream created', { machine, disk });
        return created;
      });
      p.catch(() => this.opening.delete(k));
      this.opening.set(k, p);
    }
    return p;
  }

  /** Every stream, ordered by machine then disk. */
  list(): DiskStream[] {
    return [...this.streams.values()].sort((a, b) => a.machine.localeCompare(b.machine) || a.disk.localeCompare(b.disk));
  }

  async close(): Promise<void> {
    await Promise.all([...this.streams.values()].map((s) => s.close()));
    this.streams.clear();
  }
}

function key(machine: string, disk: string): string {
  return `${machine}/${disk}`;
}
