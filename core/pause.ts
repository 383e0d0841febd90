/**
 * Waits `ms`, or less if `signal` aborts first; never rejects. For loops that check their
 * signal themselves after each wait. `unref`: the timer alone does not keep the process alive.
 */
export function pause(ms: number, signal: AbortSignal, o: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    if (o.unref) t.unref();
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
