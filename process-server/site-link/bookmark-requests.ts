/**
 * Carries out `bookmark.request` for a process server: the bookmark is handed to each
 * machine's agent (through the bookmark book the agent's heartbeat reads), the agent tags it
 * on every disk, and the outcome goes back to the control plane as a job event
 * (`machine-bookmarked` with the seq of each disk, or `machine-failed`). Delivery is at least
 * once: a command delivered while its work runs waits for it, and one delivered after it ended
 * re-sends the outcome (kept in memory; after a restart the agent is asked again).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';
import type { BookmarkRequestCommand, Check, JobEvent, MachineSpec } from '../../core/control-plane/protocol.ts';
import type { Logger } from '../../core/log.ts';
import type { BookmarkBook } from '../bookmarks.ts';

/** How long an agent has to tag a bookmark before the machine fails. */
export const DEFAULT_BOOKMARK_TIMEOUT_MS = 300_000;
const POLL_MS = 250;
/** Outcomes kept for commands delivered again. */
const MAX_KEPT = 1000;

export interface BookmarkRequestsOptions {
  readonly book: BookmarkBook;
  readonly client: ControlPlaneClient;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** @default 300000 */
  readonly timeoutMs?: number;
}

export class BookmarkRequests {
  readonly #running = new Map<string, Promise<JobEvent>>();
  readonly #done = new Map<string, JobEvent>();

  constructor(private readonly o: BookmarkRequestsOptions) {}

  /** Resolves once every machine's outcome was reported. */
  async handle(cmd: BookmarkRequestCommand): Promise<void> {
    const events = await Promise.all(cmd.machines.map((m) => this.#outcome(cmd, m)));
    await this.o.client.sendJobEvent(events, { signal: this.o.signal });
  }

  #outcome(cmd: BookmarkRequestCommand, m: MachineSpec): Promise<JobEvent> {
    const key = `${cmd.jobId}/${m.id}`;
    const done = this.#done.get(key);
    if (done) return Promise.resolve(done);
    let run = this.#running.get(key);
    if (!run) {
      run = this.#tag(cmd, m).then((event) => {
        if (this.#done.size >= MAX_KEPT) this.#done.delete(this.#done.keys().next().value!);
        this.#done.set(key, event);
        return event;
      }).finally(() => this.#running.delete(key));
      this.#running.set(key, run);
    }
    return run;
  }

  async #tag(cmd: BookmarkRequestCommand, m: MachineSpec): Promise<JobEvent> {
    const base = { jobId: cmd.jobId, machineId: m.id };
    const timeoutMs = this.o.timeoutMs ?? DEFAULT_BOOKMARK_TIMEOUT_MS;
    const asked = this.o.book.request(m.name, cmd.name);
    this.o.log.info('bookmark asked of the agent', { jobId: cmd.jobId, machine: m.name, name: cmd.name, bookmarkId: asked.id });
    await this.o.client.sendJobEvent({ ...base, type: 'progress', message: `bookmark ${JSON.stringify(cmd.name)} handed to the agent of ${m.name}` }, { signal: this.o.signal })
      .catch((err) => this.o.log.warn('progress event not sent', { jobId: cmd.jobId, error: err as Error }));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = this.o.book.get(asked.id);
      const answered = m.disks.filter((d) => b?.disks[d.name]);
      if (b && answered.length === m.disks.length) {
        const failed = m.disks.filter((d) => b.disks[d.name]!.error !== undefined || b.disks[d.name]!.seq === undefined);
        if (failed.length > 0) {
          return { ...base, type: 'machine-failed', error: `${m.name}: ${failed.map((d) => `${d.name}: ${b.disks[d.name]!.error ?? 'no seq reported'}`).join('; ')}`.slice(0, 2048) };
        }
        const checks: Check[] = m.disks.map((d) => ({ name: `bookmark ${d.name}`, passed: true, detail: `${JSON.stringify(cmd.name)} tagged at seq ${b.disks[d.name]!.seq}` }));
        const first = m.disks[0]!;
        return {
          ...base, type: 'machine-bookmarked', message: `bookmark ${JSON.stringify(cmd.name)} tagged on ${m.disks.length} disk(s)`,
          point: { time: new Date().toISOString(), seq: b.disks[first.name]!.seq!, kind: 'bookmark' }, checks,
        };
      }
      if (Date.now() >= deadline) {
        return { ...base, type: 'machine-failed', error: `the agent of ${m.name} did not tag the bookmark within ${Math.round(timeoutMs / 1000)} s (is it running and connected to this process server?)` };
      }
      await sleep(POLL_MS, undefined, { signal: this.o.signal });
    }
  }
}
