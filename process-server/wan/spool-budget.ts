/**
 * The limit on the whole spool (`--spool-max-bytes`): a batch that would pass it is refused
 * with 507 before anything is stored, so nothing acknowledged is ever lost. Above the warning
 * level a stream holding more than its fair share (limit / streams with pending data) is
 * refused first, so one busy agent cannot take the room of the others. Level changes are
 * reported (log, status, control plane) at 80 % and 95 %.
 */
export type SpoolLevel = 'ok' | 'warning' | 'critical' | 'full';

export const SPOOL_WARNING_FRACTION = 0.8;
export const SPOOL_CRITICAL_FRACTION = 0.95;

export interface SpoolStatus {
  usedBytes: number;
  /** null: no limit on the whole spool (each disk still has its own). */
  limitBytes: number | null;
  level: SpoolLevel;
}

export class SpoolBudget {
  private reserved = 0;
  private lastLevel: SpoolLevel = 'ok';
  /** Batches refused because the spool was full or the stream over its share. */
  refusedBatches = 0;

  constructor(
    readonly limitBytes: number | undefined,
    private readonly usedBytes: () => number,
    private readonly onLevel: (status: SpoolStatus, previous: SpoolLevel) => void = () => {},
  ) {}

  /**
   * Reserves room for a batch of `bytes` for a stream holding `streamBytes`, among
   * `activeStreams` streams with pending data; returns why not when it must be refused.
   * Synchronous, so concurrent batches of different streams cannot both take the last room.
   */
  reserve(bytes: number, streamBytes: number, activeStreams: number): string | undefined {
    if (this.limitBytes === undefined) return undefined;
    const used = this.usedBytes() + this.reserved;
    let why: string | undefined;
    const full = used + bytes > this.limitBytes;
    if (full) why = `spool full: ${used} of ${this.limitBytes} bytes in use`;
    else if (used + bytes > this.limitBytes * SPOOL_WARNING_FRACTION && streamBytes + bytes > this.limitBytes / Math.max(1, activeStreams)) {
      why = `spool over ${SPOOL_WARNING_FRACTION * 100}% (${used} of ${this.limitBytes} bytes) and this disk holds more than its share`;
    }
    if (why) {
      this.refusedBatches++;
      this.check(full);
      return why;
    }
    this.reserved += bytes;
    return undefined;
  }

  /** Gives a reservation back (the batch is now counted by the spool, or was not stored). */
  release(bytes: number): void {
    // Without a limit nothing was reserved (see reserve).
    if (this.limitBytes === undefined) return;
    this.reserved -= bytes;
    this.check(false);
  }

  /** `full`: a batch was just refused for want of room (it stays full until use falls below 95 %). */
  status(full = false): SpoolStatus {
    const usedBytes = this.usedBytes() + this.reserved;
    if (this.limitBytes === undefined) return { usedBytes, limitBytes: null, level: 'ok' };
    const f = usedBytes / this.limitBytes;
    const level: SpoolLevel = full || (this.lastLevel === 'full' && f >= SPOOL_CRITICAL_FRACTION) ? 'full' : f >= SPOOL_CRITICAL_FRACTION ? 'critical' : f >= SPOOL_WARNING_FRACTION ? 'warning' : 'ok';
    return { usedBytes, limitBytes: this.limitBytes, level };
  }

  /** Reports a change of level; also called as the spool drains. */
  check(full = false): SpoolStatus {
    const s = this.status(full);
    if (s.level !== this.lastLevel) {
      const previous = this.lastLevel;
      this.lastLevel = s.level;
      this.onLevel(s, previous);
    }
    return s;
  }

  get level(): SpoolLevel {
    return this.lastLevel;
  }
}
