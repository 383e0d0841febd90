/**
 * The agent's scan threads: reading and hashing a disk is the scan's whole cost, so it runs on
 * up to two worker threads (one per core on a one-core machine) while the main thread builds
 * and sends batches. `scanUnits` hands a pass its units in disk order, a few ahead.
 *
 * Threads read into slots of shared memory that live as long as the threads: a fresh 8 MiB
 * buffer per unit would cost page faults, and the garbage collector a full collection every
 * few dozen MiB of such external memory.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { UNIT_BLOCKS, UNIT_BYTES, type UnitReply, type UnitRequest, type UnitResult } from './scan-unit.ts';
import { SCAN_THREAD_ROLE } from './scan-worker.ts';

/** Threads a scan uses: enough to read and hash at disk speed, few enough to leave the server its CPUs. */
export const DEFAULT_SCAN_THREADS = Math.max(1, Math.min(2, availableParallelism()));
/** Units requested ahead of the one being consumed, per thread. */
const UNITS_AHEAD_PER_THREAD = 2;

interface Thread {
  worker: Worker;
  pending: Map<number, { slotIndex: number; resolve: (r: UnitResult) => void; reject: (e: Error) => void }>;
}

export class ScanThreads {
  private threads: Array<Thread | undefined>;
  private nextId = 1;
  private turn = 0;
  private readonly slots: SharedArrayBuffer[] = [];
  private readonly freeSlots: number[] = [];

  constructor(readonly count = DEFAULT_SCAN_THREADS) {
    this.threads = new Array<Thread | undefined>(count);
  }

  /**
   * Reads and judges one unit on the next thread in turn. A result whose data is `inSlot`
   * keeps its slot until `release(result.slotIndex)`.
   */
  scan(req: Omit<UnitRequest, 'id' | 'slot' | 'slotIndex'>): Promise<UnitResult> {
    const i = this.turn++ % this.count;
    const t = (this.threads[i] ??= this.start(i));
    const id = this.nextId++;
    // Slots in use are bounded by the units asked ahead plus the few one batch refers to.
    const slotIndex = this.freeSlots.pop() ?? this.slots.push(new SharedArrayBuffer(UNIT_BYTES)) - 1;
    return new Promise<UnitResult>((resolve, reject) => {
      t.pending.set(id, { slotIndex, resolve, reject });
      t.worker.postMessage({ ...req, id, slot: this.slots[slotIndex], slotIndex } satisfies UnitRequest);
    });
  }

  /** Lends a slot out again once nothing refers to the unit data in it. */
  release(slotIndex: number): void {
    this.freeSlots.push(slotIndex);
  }

  async close(): Promise<void> {
    const all = this.threads.filter((t): t is Thread => t !== undefined);
    this.threads.fill(undefined);
    await Promise.all(all.map((t) => t.worker.terminate()));
  }

  private start(i: number): Thread {
    // A checkout runs TypeScript through a bootstrap that loads tsx; the bundle starts itself.
    const fromSource = import.meta.url.endsWith('.ts');
    const worker = fromSource
      ? new Worker(new URL('./scan-worker-boot.mjs', import.meta.url))
      : new Worker(new URL(import.meta.url), { workerData: { role: SCAN_THREAD_ROLE } });
    worker.unref();
    const t: Thread = { worker, pending: new Map() };
    const fail = (e: Error) => {
      if (this.threads[i] === t) this.threads[i] = undefined;
      for (const p of t.pending.values()) {
        this.release(p.slotIndex);
        p.reject(e);
      }
      t.pending.clear();
    };
    worker.on('message', (reply: UnitReply) => {
      const p = t.pending.get(reply.id);
      if (!p) return;
      t.pending.delete(reply.id);
      if ('error' in reply || !reply.inSlot) this.release(p.slotIndex);
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply);
    });
    worker.on('error', (e) => fail(new Error(`scan thread failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => fail(new Error(`scan thread exited (code ${code})`)));
    return t;
  }
}

export interface ScanUnitsOptions {
  threads: ScanThreads;
  path: string;
  sizeBytes: number;
  blockCount: number;
  startBlock: number;
  /** The manifest's entries for blocks [first, first + count), copied at the time of asking. */
  known(first: number, count: number): Uint8Array;
  skipZeroBlocks: boolean;
}

/** The units of a pass from `startBlock` on, in disk order. */
export async function* scanUnits(o: ScanUnitsOptions): AsyncGenerator<UnitResult> {
  const ahead: Array<Promise<UnitResult>> = [];
  let next = o.startBlock;
  const ask = () => {
    while (ahead.length < o.threads.count * UNITS_AHEAD_PER_THREAD && next < o.blockCount) {
      const count = Math.min(UNIT_BLOCKS, o.blockCount - next);
      const p = o.threads.scan({ path: o.path, sizeBytes: o.sizeBytes, firstBlock: next, count, known: o.known(next, count), skipZeroBlocks: o.skipZeroBlocks });
      p.catch(() => undefined); // surfaces when awaited below; units asked ahead of a failure are dropped
      ahead.push(p);
      next += count;
    }
  };
  ask();
  try {
    while (ahead.length > 0) {
      const unit = await ahead.shift()!;
      ask();
      yield unit;
    }
  } finally {
    // A pass that stops early still gets its slots back from the units it asked ahead for.
    for (const p of ahead) p.then((u) => u.inSlot && o.threads.release(u.slotIndex), () => undefined);
  }
}

