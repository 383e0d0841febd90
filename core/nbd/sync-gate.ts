/**
 * Decides, call by call, whether a file call runs synchronously on the event loop or goes to
 * the thread pool. Synchronous calls are cheaper for data in the page cache (handing 256 KiB
 * reads to the thread pool spent a quarter of the server's CPU time waking threads) but stall
 * every connection while the disk is slow. So calls run synchronously up to `maxBytes`, and
 * one that takes longer than `slowMs` sends every call to the thread pool for `backoffMs`.
 */
export class SyncGate {
  private asyncUntilMs = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly slowMs = 1,
    private readonly backoffMs = 1000,
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
      if (end - start > this.slowMs) this.asyncUntilMs = end + this.backoffMs;
    }
  }
}
