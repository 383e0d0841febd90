/**
 * Commands to sites. Each enrolled process server and master target has its own queue,
 * `site-<serverId>`, that only it reads (through the API, authenticated by its credential).
 * Delivery is at least once: a command not acknowledged within the visibility timeout is
 * offered again, and after too many offers goes to the queue's dead-letter queue.
 */
import type { PolledCommand, SiteCommand } from '../../core/control-plane/protocol.ts';
import { SITE_PROTOCOL_VERSION } from '../../core/control-plane/protocol.ts';
import { nowIso, type Context } from '../deps.ts';
import { newId } from './ids.ts';

/** A command before the control plane stamps it. */
export type CommandDraft = SiteCommand extends infer C ? (C extends SiteCommand ? Omit<C, 'v' | 'id' | 'issuedAt'> : never) : never;

export function siteQueueName(serverId: string): string {
  return `site-${serverId}`;
}

export async function sendCommand(ctx: Context, serverId: string, draft: CommandDraft): Promise<SiteCommand> {
  const command = { v: SITE_PROTOCOL_VERSION, id: newId('command'), issuedAt: nowIso(ctx), ...draft } as SiteCommand;
  const queue = await ctx.siteQueues.open(siteQueueName(serverId));
  await queue.send(JSON.stringify(command));
  ctx.log.info('command queued', { serverId, commandId: command.id, type: command.type });
  return command;
}

export async function pollCommands(
  ctx: Context,
  serverId: string,
  options: { waitSeconds: number; maxCommands: number; signal?: AbortSignal },
): Promise<PolledCommand[]> {
  const queue = await ctx.siteQueues.open(siteQueueName(serverId));
  const got = await queue.receive({
    waitSeconds: options.waitSeconds,
    maxMessages: options.maxCommands,
    visibilityTimeoutSeconds: ctx.settings.commandVisibilitySeconds,
    signal: options.signal,
  });
  const out: PolledCommand[] = [];
  for (const m of got) {
    let command: SiteCommand;
    try {
      command = JSON.parse(m.body) as SiteCommand;
    } catch {
      ctx.log.error('dropped unreadable command', { serverId, messageId: m.messageId });
      await queue.delete(m.receipt);
      continue;
    }
    out.push({ receipt: m.receipt, receiveCount: m.receiveCount, command });
  }
  return out;
}

export async function ackCommands(ctx: Context, serverId: string, receipts: string[]): Promise<void> {
  const queue = await ctx.siteQueues.open(siteQueueName(serverId));
  for (const r of receipts) await queue.delete(r);
}
