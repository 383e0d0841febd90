/**
 * The long poll every site keeps on its command queue: poll, hand each command to `handle`,
 * acknowledge it once `handle` resolves. A command whose handling throws is left
 * unacknowledged, so the queue offers it again (and dead-letters it after a few receives);
 * handlers must therefore be idempotent. Commands of an unknown version are left alone.
 *
 * @example
 *   const loop = runCommandLoop(client, async (cmd) => { ... }, { log, signal });
 *   controller.abort(); await loop;
 */
import type { Logger } from '../log.ts';
import { pause } from '../pause.ts';
import type { ControlPlaneClient } from './client.ts';
import { SITE_PROTOCOL_VERSION, type PolledCommand, type SiteCommand } from './protocol.ts';

/** Longest wait between failed polls. */
export const MAX_POLL_BACKOFF_MS = 60_000;

export interface CommandLoopOptions {
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Seconds each long poll waits for a first command. @default 20 */
  readonly waitSeconds?: number;
}

export async function runCommandLoop(
  client: ControlPlaneClient,
  handle: (command: SiteCommand, polled: PolledCommand) => Promise<void>,
  o: CommandLoopOptions,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let backoffMs = 1000;
  while (!o.signal.aborted) {
    let polled: PolledCommand[];
    try {
      polled = await client.pollCommands({ waitSeconds: o.waitSeconds ?? 20, signal: o.signal });
      backoffMs = 1000;
    } catch (err) {
      if (o.signal.aborted) break;
      o.log.warn('command poll failed; retrying', { error: err as Error, retryInMs: backoffMs });
      await pause(backoffMs * (0.75 + Math.random() / 2), o.signal);
      backoffMs = Math.min(backoffMs * 2, MAX_POLL_BACKOFF_MS);
      continue;
    }
    for (const p of polled) {
      const cmd = p.command;
      if (cmd?.v !== SITE_PROTOCOL_VERSION) {
        o.log.warn('command of unknown version left unacknowledged', { version: (cmd as { v?: unknown })?.v, receiveCount: p.receiveCount });
        continue;
      }
      const run = (async () => {
        try {
          await handle(cmd, p);
          await client.ackCommand(p.receipt);
        } catch (err) {
          if (o.signal.aborted) return;
          o.log.error('command failed; it will be offered again', { commandId: cmd.id, type: cmd.type, receiveCount: p.receiveCount, error: err as Error });
        }
      })();
      inFlight.add(run);
      void run.finally(() => inFlight.delete(run));
    }
  }
  await Promise.all(inFlight);
}

/** Calls `fn` now and then every `intervalMs` until the signal aborts; errors are logged. */
export async function runEvery(intervalMs: number, what: string, fn: () => Promise<void>, o: { log: Logger; signal: AbortSignal }): Promise<void> {
  while (!o.signal.aborted) {
    try {
      await fn();
    } catch (err) {
      if (o.signal.aborted) break;
      o.log.warn(`${what} failed`, { error: err as Error });
    }
    await pause(intervalMs, o.signal);
  }
}

