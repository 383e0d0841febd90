/**
 * Decides, call by call, whether a file call runs synchronously on the event loop or goes to
 * the thread pool. Synchronous calls are cheaper for data in the page cache (handing 256 KiB
 * reads to the thread pool spent a quarter of the server's CPU time waking threads) but stall
 * every connection while the disk is slow. So calls run synchronously up to `maxBytes`, and
 * `slowInARow` calls in a row that each take longer than `slowMs` send every call to the
 * thread pool for `backoffMs`. (One slow call alone proves little: on a machine with a load of
 * 10 on 2 cores, 4 KiB calls took over 1 ms about once in 1,500 and over 5 ms once in 6,000,
 * the process descheduled mid-call; two in a row over 5 ms never happened in 60,000.)
 */
export class SyncGate {
  private asyncUntilMs = 0;
  private slowCalls = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly slowMs = 5,
    private readonly backoffMs = 1000,
    private readonly slowInARow = 2,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True when a call moving `bytes` should run synchronously now. */
  allows(bytes: number): boolean {
    if (bytes > this.maxBytes) return false;
    if (this.asyncUntilMs === 0) return true;
    if (this.now() < this.asyncUntilMs) return false;
    this.asyncUntilMs = 0;
    return true;
  }

  /** Runs a synchronous call and notes whether it was slow. */
  run<T>(call: () => T): T {
    const start = this.now();
    try {
      return call();
    } finally {
      const end = this.now();
      if (end - start <= this.slowMs) this.slowCalls = 0;
      else if (++this.slowCalls >= this.slowInARow) {
        this.slowCalls = 0;
        this.asyncUntilMs = end + this.backoffMs;
      }
    }
  }
}
