/**
 * The resync of a tap disk (docs/agent-state.md, "Hash-compare resync"): its dirty blocks (all
 * of them after a host crash) are compared with the replica's block hashes, fetched through
 * the process server range by range, and only the blocks that differ are sent. Comparing is
 * safe only against the state the stream's next records apply to, so hashes are used only when
 * they describe exactly the seq before this agent's next one; until then the resync waits.
 */
import { BLOCK_HASH_BYTES } from '../../core/hash.ts';
import type { Logger } from '../../core/log.ts';
import type { TapDisk } from './tap-disk.ts';
import { fetchReplicaHashes, type ReplicaHashes } from '../replica-hashes.ts';

/** Blocks whose hashes one request asks for (256 MiB of disk). */
export const HASH_WINDOW_BLOCKS = 4096;
/** Dirty blocks compared (and sent where they differ) per synchronous round. */
export const RESYNC_ROUND_BLOCKS = 256;
/**
 * The last round, which ends the resync in one synchronous step, may send this many blocks
 * without a hash (blocks written again after their range was compared).
 */
const FINAL_UNHASHED_BLOCKS = 16;
/** A stuck comparison is reported this often. */
const WARN_EVERY_MS = 30_000;

export interface HashResyncOptions {
  disk: TapDisk;
  processServerUrl: string;
  token?: string;
  machine: string;
  /** First seq the process server does not hold, as the uploader knows it (undefined while unknown). */
  serverNextSeq: () => number | undefined;
  /** Saves the disk's state (the cursor). */
  save: () => Promise<void>;
  log: Logger;
  signal: AbortSignal;
  /** @default HASH_WINDOW_BLOCKS */
  windowBlocks?: number;
  /** @default RESYNC_ROUND_BLOCKS */
  roundBlocks?: number;
}

/** The replica's hashes of one range of blocks, valid until this agent sends one of them. */
interface HashWindow {
  first: number;
  end: number;
  known: Map<number, Buffer>;
  streamRestarts: number;
}

export class HashResync {
  private window: HashWindow | undefined;
  private waitingSinceMs = 0;
  private lastWarnMs = 0;

  private readonly windowBlocks: number;
  private readonly roundBlocks: number;

  constructor(private readonly o: HashResyncOptions) {
    this.windowBlocks = o.windowBlocks ?? HASH_WINDOW_BLOCKS;
    this.roundBlocks = o.roundBlocks ?? RESYNC_ROUND_BLOCKS;
  }

  /** One step of the resync; false when it has to wait (log not drained, replica not there yet, no log room). */
  async step(): Promise<boolean> {
    const d = this.o.disk;
    if (this.window && this.window.streamRestarts !== d.streamRestarts) this.window = undefined;
    if (!this.window) return this.openWindow();
    const w = this.window;
    // Reads and records in one synchronous step, in its turn among the consumer's writes.
    const outcome = await d.inTurn(() => this.round(w));
    if (outcome === 'no room') return false;
    if (outcome === 'stale') return true;
    if (outcome === 'finished') this.o.log.info('resync finished', { disk: d.name, ...d.resyncStats });
    await this.o.save();
    return true;
  }

  private round(w: HashWindow): 'window done' | 'round done' | 'finished' | 'no room' | 'stale' {
    const d = this.o.disk;
    if (this.window !== w || w.streamRestarts !== d.streamRestarts) {
      // The stream restarted while the round waited for its turn: its hashes no longer hold.
      if (this.window === w) this.window = undefined;
      return 'stale';
    }
    const blocks = d.bitmap.takeIn(w.first, w.end, this.roundBlocks + 1);
    if (blocks.length === 0) {
      d.state.resyncCursorBlock = w.end >= d.bitmap.blockCount ? 0 : w.end;
      this.window = undefined;
      return 'window done';
    }
    const outside = d.bitmap.dirtyCount - blocks.length;
    if (blocks.length <= this.roundBlocks && outside <= FINAL_UNHASHED_BLOCKS && d.hasRoomForBlocks(blocks.length + outside)) {
      // Everything left fits one synchronous step: compare, send, and end the resync in it.
      d.resyncRound(d.bitmap.take(this.roundBlocks + FINAL_UNHASHED_BLOCKS), w.known);
      d.finishResync();
      d.state.resyncCursorBlock = 0;
      this.window = undefined;
      return 'finished';
    }
    const round = blocks.slice(0, this.roundBlocks);
    if (!d.hasRoomForBlocks(round.length)) return 'no room';
    d.resyncRound(round, w.known);
    d.state.resyncCursorBlock = round[round.length - 1] + 1;
    return 'round done';
  }

  /** Fetches the hashes of the range at the cursor, once nothing this agent recorded is still on its way. */
  private async openWindow(): Promise<boolean> {
    const d = this.o.disk;
    const finished = await d.inTurn(() => {
      if (d.bitmap.dirtyCount > 0) return false;
      d.finishResync();
      return true;
    });
    if (finished) {
      this.o.log.info('resync finished', { disk: d.name, ...d.resyncStats });
      await this.o.save();
      return true;
    }
    if (this.o.serverNextSeq() !== d.nextSeq) return this.waiting('the change log has not drained to the process server yet');
    let first = d.bitmap.nextDirty(d.state.resyncCursorBlock ?? 0);
    if (first < 0) first = d.bitmap.nextDirty(0);
    const restarts = d.streamRestarts;
    const f = await this.fetch(first, this.windowBlocks);
    if (f.kind === 'wait') return this.waiting(f.why);
    const known = new Map<number, Buffer>();
    if (f.kind === 'hashes') {
      // Only the state right before this agent's next record may be compared with.
      if (f.seq !== d.nextSeq - 1 || restarts !== d.streamRestarts) {
        return this.waiting(`the replica is at seq ${f.seq}, this agent's records end at ${d.nextSeq - 1}`);
      }
      for (let i = 0; i < f.count; i++) known.set(f.first + i, f.hashes.subarray(i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES));
    } else {
      this.o.log.warn('replica block hashes unavailable: sending the dirty blocks of this range without comparing', { disk: d.name, firstBlock: first, reason: f.why });
    }
    this.window = { first, end: Math.min(first + this.windowBlocks, d.bitmap.blockCount), known, streamRestarts: restarts };
    this.waitingSinceMs = 0;
    return true;
  }

  private waiting(why: string): false {
    const now = Date.now();
    if (!this.waitingSinceMs) this.waitingSinceMs = now;
    if (now - this.waitingSinceMs >= WARN_EVERY_MS && now - this.lastWarnMs >= WARN_EVERY_MS) {
      this.lastWarnMs = now;
      this.o.log.warn('resync waiting to compare with the replica', { disk: this.o.disk.name, why, waitingSeconds: Math.round((now - this.waitingSinceMs) / 1000) });
    }
    return false;
  }

  private fetch(first: number, count: number): Promise<ReplicaHashes> {
    const o = this.o;
    return fetchReplicaHashes({ processServerUrl: o.processServerUrl, token: o.token, machine: o.machine, disk: o.disk.name, signal: o.signal }, first, count);
  }
}
