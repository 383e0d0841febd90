/**
 * The process server's side of the WAN, shared by all its streams: turns at the link (fair
 * among streams), the bandwidth schedule and per-machine policy limits, the blocks the master
 * target holds, the whole-spool budget, and the counters /metrics shows. `ship` sends one
 * batch the way docs/wan-optimisation.md describes, resending blocks the master target says
 * it lacks.
 */
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { postBinary, type PeerResponse } from '../../core/http/client.ts';
import { addStats, emptyStats, optimiseBatch, type SpooledBatch } from './optimise.ts';
import { frameBuffers } from '../frame-buffers.ts';
import { HeldBlocks, DEFAULT_HELD_BLOCKS } from './held-blocks.ts';
import { FairTurns } from './fair-turns.ts';
import { Pacer, rateAt, UNLIMITED, type BandwidthSchedule, type RateBytesPerSecond } from './bandwidth.ts';
import { SpoolBudget, type SpoolLevel, type SpoolStatus } from './spool-budget.ts';

/** Batches in flight to the master target at once. */
export const DEFAULT_SHIP_SLOTS = 8;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

export interface WanOptions {
  /** @default unlimited */
  bandwidth?: BandwidthSchedule;
  /** Re-encode batches (zeros, references, compression). @default true */
  optimise?: boolean;
  /** @default DEFAULT_SHIP_SLOTS */
  slots?: number;
  heldBlocks?: number;
  /** Limit of the whole spool; none by default (each disk still has its own). */
  spoolMaxBytes?: number;
  /** Told when the spool crosses 80 % or 95 % (or drains below). */
  onSpoolLevel?: (status: SpoolStatus, previous: SpoolLevel) => void;
  now?: () => number;
}

export interface ShipAnswer {
  nextSeq?: number;
  error?: string;
  reason?: string;
  missing?: unknown;
}

export class WanLink {
  readonly held: HeldBlocks;
  readonly turns: FairTurns;
  readonly pacer: Pacer;
  readonly budget: SpoolBudget;
  /** Totals since start, for /metrics. */
  readonly totals = { ...emptyStats(), shippedBatches: 0, sentBytes: 0, missingBlocks: 0, receivedBytes: 0, receivedBatches: 0 };
  /** The policy limit of a machine's streams, from the control plane's assignment. */
  machineRate: (machine: string) => RateBytesPerSecond = () => undefined;
  private readonly machinePacers = new Map<string, Pacer>();
  private readonly optimise: boolean;
  private readonly now: () => number;

  constructor(o: WanOptions, private readonly streams: () => ReadonlyArray<{ spool: { bytes: number } }>) {
    this.now = o.now ?? Date.now;
    const schedule = o.bandwidth ?? UNLIMITED;
    this.held = new HeldBlocks(o.heldBlocks ?? DEFAULT_HELD_BLOCKS);
    this.turns = new FairTurns(o.slots ?? DEFAULT_SHIP_SLOTS);
    this.pacer = new Pacer(() => rateAt(schedule, new Date(this.now())), this.now);
    this.budget = new SpoolBudget(o.spoolMaxBytes, () => this.streams().reduce((n, s) => n + s.spool.bytes, 0), o.onSpoolLevel);
    this.optimise = o.optimise ?? true;
  }

  /**
   * Sends one batch of spooled frames to the master target, in its turn and within the
   * bandwidth limits. `pieces`: the master target reads version 2 frames.
   */
  async ship(mt: { url: string; token?: string; tls?: TlsIdentity }, machine: string, disk: string, batch: SpooledBatch, pieces: boolean): Promise<PeerResponse<ShipAnswer>> {
    const release = await this.turns.acquire();
    try {
      let forceData: Set<string> | undefined;
      let usePieces = pieces && this.optimise;
      for (let attempt = 0; ; attempt++) {
        const o = optimiseBatch(batch, { optimise: this.optimise, pieces: usePieces, held: this.held, forceData, pool: frameBuffers });
        let r: PeerResponse<ShipAnswer>;
        try {
          await this.pacer.take(o.frame.length);
          await this.machinePacer(machine)?.take(o.frame.length);
          r = await postBinary<ShipAnswer>(mt.url, `/v1/streams/${machine}/${disk}/batches`, o.frame, { token: mt.token, tls: mt.tls, timeoutMs: 120_000 });
          this.totals.sentBytes += o.frame.length;
        } finally {
          frameBuffers.release(o.frame);
        }
        if (r.status === 200) {
          for (const h of o.hashes) this.held.add(h);
          if (this.optimise) addStats(this.totals, o.stats);
          this.totals.shippedBatches++;
          return r;
        }
        if (r.status === 422 && r.body.reason === 'missing-blocks' && Array.isArray(r.body.missing) && attempt < 2) {
          const missing = r.body.missing.filter((m): m is string => typeof m === 'string');
          this.totals.missingBlocks += missing.length;
          for (const m of missing) this.held.forget(m);
          forceData = new Set([...(forceData ?? []), ...missing]);
          // A second miss should not happen (every named block is now sent as data): give up references.
          if (attempt === 1) usePieces = false;
          continue;
        }
        return r;
      }
    } finally {
      release();
    }
  }

  private machinePacer(machine: string): Pacer | undefined {
    if (this.machineRate(machine) === undefined) return undefined;
    let p = this.machinePacers.get(machine);
    if (!p) this.machinePacers.set(machine, (p = new Pacer(() => this.machineRate(machine), this.now)));
    return p;
  }

  /**
   * Spooled bytes merged into one shipped batch: 8 MiB, or a quarter second of the rate in
   * force (at least 64 KiB), so that turns stay short on a slow link.
   */
  batchBytes(): number {
    const rates = [this.currentRate].filter((r): r is number => r !== undefined);
    return rates.length ? Math.min(MAX_BATCH_BYTES, Math.max(64 * 1024, Math.floor(rates[0] / 4))) : MAX_BATCH_BYTES;
  }

  /** Streams with data spooled, counting `s` in any case: they share the spool. */
  activeStreams(s: { spool: { bytes: number } }): number {
    return this.streams().filter((x) => x.spool.bytes > 0 && x !== s).length + 1;
  }

  /** The rate in force now, if any. */
  get currentRate(): RateBytesPerSecond {
    return this.pacer.currentRate;
  }
}
