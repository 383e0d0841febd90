/** A sleep that another part of the program can cut short: "there is work now". */
export class Wakeable {
  private wakeUp: (() => void) | undefined;

  /** Waits `ms`, or until `wake()` is called. */
  async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
    this.wakeUp = undefined;
  }

  /** Ends the current sleep, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
