/**
 * How a process server or master target keeps its vault's revocation list fresh: it fetches
 * the list every `intervalMs` (so a revocation takes effect within about that long) and keeps
 * the last one it got when the control plane cannot be reached.
 */
import type { Logger } from '../log.ts';
import type { RevocationList } from '../tls/revocation-list.ts';
import type { ControlPlaneClient } from './client.ts';
import { runEvery } from './command-loop.ts';

/** How often the list is fetched. */
export const DEFAULT_REVOCATION_POLL_INTERVAL_MS = 30_000;

export function runRevocationPoll(
  client: ControlPlaneClient,
  list: RevocationList,
  o: { intervalMs?: number; log: Logger; signal: AbortSignal },
): Promise<void> {
  return runEvery(o.intervalMs ?? DEFAULT_REVOCATION_POLL_INTERVAL_MS, 'revocation list fetch', async () => {
    const served = await client.getRevocations({ signal: o.signal });
    if (await list.replace(served, Date.now())) o.log.info('revocation list changed', { revoked: list.size });
  }, { log: o.log, signal: o.signal });
}
