/**
 * The WAN bandwidth limit: a daily schedule of rates in local time
 * (`08:00-18:00=20MB/s,*=unlimited`), enforced by pacing: each batch may leave once the
 * batches before it have had the time the rate gives them.
 */
import { UsageError } from '../../core/errors.ts';

/** A rate in bytes per second; `undefined` is unlimited. */
export type RateBytesPerSecond = number | undefined;

export interface ScheduleEntry {
  /** Minutes after local midnight where the entry starts and ends (end may be before start: it wraps). */
  fromMinute: number;
  toMinute: number;
  rate: RateBytesPerSecond;
}

export interface BandwidthSchedule {
  entries: ScheduleEntry[];
  /** The `*` entry, for times no other entry covers. */
  otherwise: RateBytesPerSecond;
}

export const UNLIMITED: BandwidthSchedule = { entries: [], otherwise: undefined };

const UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3 };

/** Parses `20MB/s`, `512KiB/s`, `100Mbit/s` or `unlimited`. */
export function parseRate(s: string): RateBytesPerSecond {
  if (/^(unlimited|none|off)$/i.test(s.trim())) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|m|g|ki|mi|gi)?(b|bit)\/s\s*$/i.exec(s);
  if (!m) throw new UsageError(`invalid rate ${JSON.stringify(s)}`, { hint: 'write e.g. 20MB/s, 512KiB/s, 100Mbit/s or unlimited' });
  const bytes = Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()] / (m[3] === 'b' || m[3] === 'B' ? 1 : 8);
  if (!(bytes >= 1)) throw new UsageError(`rate ${JSON.stringify(s)} is below 1 byte per second`);
  return Math.floor(bytes);
}

function minuteOf(hhmm: string, whole: string): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm);
  if (!m || Number(m[1]) > 24 || Number(m[2]) > 59 || (Number(m[1]) === 24 && m[2] !== '00')) {
    throw new UsageError(`invalid time ${JSON.stringify(hhmm)} in bandwidth schedule ${JSON.stringify(whole)}`, { hint: 'use HH:MM, e.g. 08:00-18:00=20MB/s,*=unlimited' });
  }
  return Number(m[1]) * 60 + Number(m[2]);
}

/** Parses `HH:MM-HH:MM=RATE,...,*=RATE`; a bare rate is `*=RATE`. The first matching entry wins. */
export function parseSchedule(s: string): BandwidthSchedule {
  const out: BandwidthSchedule = { entries: [], otherwise: undefined };
  if (!s.includes('=')) return { entries: [], otherwise: parseRate(s) };
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new UsageError(`bandwidth schedule entry ${JSON.stringify(part)} has no =RATE`, { hint: 'e.g. 08:00-18:00=20MB/s,*=unlimited' });
    const when = part.slice(0, eq).trim();
    const rate = parseRate(part.slice(eq + 1));
    if (when === '*') {
      out.otherwise = rate;
      continue;
    }
    const [from, to, extra] = when.split('-');
    if (to === undefined || extra !== undefined) throw new UsageError(`invalid time range ${JSON.stringify(when)} in bandwidth schedule`, { hint: 'use HH:MM-HH:MM or *' });
    out.entries.push({ fromMinute: minuteOf(from, s), toMinute: minuteOf(to, s), rate });
  }
  return out;
}

/** The rate the schedule gives at local time `date`. */
export function rateAt(schedule: BandwidthSchedule, date: Date): RateBytesPerSecond {
  const minute = date.getHours() * 60 + date.getMinutes();
  for (const e of schedule.entries) {
    const inside = e.fromMinute <= e.toMinute ? minute >= e.fromMinute && minute < e.toMinute : minute >= e.fromMinute || minute < e.toMinute;
    if (inside) return e.rate;
  }
  return schedule.otherwise;
}

/**
 * Paces sends to a rate. `take(bytes)` resolves when the batch may leave: the link is
 * booked back to back, so over any stretch of time no more than the rate (plus one batch)
 * goes out. Callers are served in the order they asked.
 */
export class Pacer {
  private nextFreeMs = 0;
  /** Bytes that went through this pacer. */
  sentBytes = 0;

  constructor(private readonly rate: () => RateBytesPerSecond, private readonly now: () => number = Date.now) {}

  get currentRate(): RateBytesPerSecond {
    return this.rate();
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.sentBytes += bytes;
    const rate = this.rate();
    const now = this.now();
    if (rate === undefined) {
      this.nextFreeMs = now;
      return;
    }
    const startMs = Math.max(now, this.nextFreeMs);
    this.nextFreeMs = startMs + (bytes / rate) * 1000;
    if (startMs > now) await sleep(startMs - now, signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
