/**
 * The agents' way to the master target's block hashes (docs/wire-format.md, "Block hashes"):
 * agents never talk to the master target, so the process server asks for them, and only once
 * everything it holds for the stream has been applied there. Otherwise it answers with the
 * positions, and the agent asks again later.
 */
import { requestJson } from '../core/http/client.ts';
import type { Stream } from './stream.ts';

/** How long a request waits for the spool to drain when it does not say. */
export const DEFAULT_HASH_WAIT_MS = 5_000;
const MAX_HASH_WAIT_MS = 30_000;
const POLL_MS = 25;

export interface ProxyAnswer {
  status: 200 | 400 | 404 | 409 | 423 | 500 | 502 | 503;
  body: Record<string, unknown>;
}

/** Waits until nothing of the stream is pending here, then passes the master target's answer on. */
export async function blockHashesFor(stream: Stream, query: Record<string, string>): Promise<ProxyAnswer> {
  const waitText = query.waitMs ?? String(DEFAULT_HASH_WAIT_MS);
  if (!/^\d{1,6}$/.test(waitText)) return { status: 400, body: { error: `waitMs must be a non-negative integer, got ${JSON.stringify(waitText)}` } };
  const until = Date.now() + Math.min(Number(waitText), MAX_HASH_WAIT_MS);
  let received = await stream.acceptNextSeq();
  while (stream.spool.pendingCount > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    received = await stream.acceptNextSeq();
  }
  if (stream.spool.pendingCount > 0) {
    return {
      status: 409,
      body: {
        error: `${stream.machine}/${stream.disk} has batches not yet applied at the master target`,
        appliedNextSeq: stream.appliedNextSeq, receivedNextSeq: received,
        hint: stream.shipError ? `shipping is failing: ${stream.shipError}` : 'ask again once the backlog has shipped',
      },
    };
  }
  const params = new URLSearchParams({ first: query.first ?? '', count: query.count ?? '' });
  const r = await requestJson<Record<string, unknown>>(stream.mt.url, 'GET', `/v1/machines/${stream.machine}/disks/${stream.disk}/block-hashes?${params}`, undefined, {
    token: stream.mt.token, tls: stream.mt.tls, timeoutMs: 120_000,
  });
  if (r.status === 200) return { status: 200, body: { ...r.body, receivedNextSeq: received } };
  const status = ([400, 404, 423, 503] as const).find((s) => s === r.status) ?? 502;
  return { status, body: { error: `master target: ${String(r.body.error ?? r.status)}`, ...(r.body.hint ? { hint: r.body.hint } : {}) } };
}
