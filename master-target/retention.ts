/**
 * The retention window: deleting whole old journal segments, periodically and after
 * rollovers, and compacting sealed segments to the retention tiers (docs/journal-format.md,
 * "Retention", "Compaction").
 */
import type { Logger } from '../core/log.ts';
import type { DiskStream } from './disk-stream.ts';
import type { TierPolicy } from './retention-tiers.ts';
import type { StreamStore } from './store.ts';

/** Default window of the CLI: 24 hours. */
export const DEFAULT_RETENTION_SECONDS = 24 * 3600;
/** Segments roll over at this size. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Segments roll over at this age: an eighth of the window, between 1 s and 1 h. */
export function segmentMaxAgeMs(retentionSeconds: number): number {
  return Math.min(3600_000, Math.max(1000, (retentionSeconds * 1000) / 8));
}

/** How often the retainer runs: a tenth of the window, between 1 s and 1 min. */
export function retentionIntervalMs(retentionSeconds: number): number {
  return Math.min(60_000, Math.max(1000, (retentionSeconds * 1000) / 10));
}

export class Retainer {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly retentionSeconds: number,
    private readonly now: () => number,
    private readonly log: Logger,
    /** With tiers, each pass also compacts the segments whose thinned points it can drop. */
    private readonly tiers?: TierPolicy,
  ) {}

  /** Points older than this are outside the window. */
  cutoffMs(): number {
    return this.now() - this.retentionSeconds * 1000;
  }

  /** Applies the window to one stream, then compacts it (with tiers). */
  async retain(stream: DiskStream, compact = true): Promise<void> {
    try {
      await stream.retain(this.cutoffMs());
    } catch (err) {
      this.log.error('retention failed', { machine: stream.machine, disk: stream.disk, error: err });
    }
    if (!this.tiers || !compact) return;
    try {
      await stream.compact(this.tiers, this.now());
    } catch (err) {
      this.log.error('journal compaction failed', { machine: stream.machine, disk: stream.disk, error: err });
    }
  }

  /** Applies the window to every stream of `store`; `compact: false` skips compaction (a quick pass at startup). */
  async runOnce(store: StreamStore, compact = true): Promise<void> {
    for (const s of store.list()) await this.retain(s, compact);
  }

  start(store: StreamStore, intervalMs: number): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.runOnce(store).finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
