/**
 * Turns at the link to the master target. Streams that want to ship queue up, and a free
 * slot goes to the stream that has waited longest; a stream that shipped queues again
 * behind the others, so with many agents every stream gets its turn and none starves
 * another, however much one of them has pending.
 */
export class FairTurns {
  private readonly queue: Array<() => void> = [];
  private busy = 0;

  constructor(readonly slots: number) {}

  /** Waits for a turn; call the returned function when the batch is done. */
  async acquire(): Promise<() => void> {
    if (this.busy < this.slots && this.queue.length === 0) this.busy++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.busy--;
    };
  }

  /** Streams waiting for a turn. */
  get waiting(): number {
    return this.queue.length;
  }
}
