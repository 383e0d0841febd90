/**
 * Agents authenticate to the process server with their own site credential; the process
 * server asks the control plane who it is (`POST /api/v1/site/agents/verify`) and caches the
 * answer briefly: a valid answer for `VALID_CACHE_MS`, a refusal for `INVALID_CACHE_MS`.
 * Credentials are cached by their SHA-256, never logged.
 */
import { createHash } from 'node:crypto';
import { TidemarkError } from '../../core/errors.ts';
import type { ControlPlaneClient } from '../../core/control-plane/client.ts';

export const VALID_CACHE_MS = 30_000;
export const INVALID_CACHE_MS = 5_000;
const MAX_CACHED = 10_000;

/** The agent behind a credential. */
export interface AgentIdentity {
  machineId: string;
  /** The machine's name: the only streams this agent may touch are `/v1/streams/{machineName}/…`. */
  machineName: string;
}

/** The control plane could not be asked (the agent should retry, not give up). */
export class AgentVerificationUnavailableError extends TidemarkError {}

export type AgentAuthenticator = (credential: string) => Promise<AgentIdentity | undefined>;

export function agentAuthenticator(client: ControlPlaneClient, now: () => number = Date.now): AgentAuthenticator {
  const cache = new Map<string, { until: number; identity: AgentIdentity | undefined }>();
  const pending = new Map<string, Promise<AgentIdentity | undefined>>();
  return async (credential) => {
    const key = createHash('sha256').update(credential).digest('base64url');
    const hit = cache.get(key);
    if (hit && hit.until > now()) return hit.identity;
    const running = pending.get(key);
    if (running) return running;
    const ask = (async () => {
      let answer;
      try {
        answer = await client.verifyAgent(credential);
      } catch (cause) {
        throw new AgentVerificationUnavailableError('cannot verify the agent credential with the control plane', { cause, hint: 'retry; check that the control plane is reachable' });
      }
      const identity = answer.valid ? { machineId: answer.machineId, machineName: answer.machineName } : undefined;
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, { until: now() + (identity ? VALID_CACHE_MS : INVALID_CACHE_MS), identity });
      return identity;
    })();
    pending.set(key, ask);
    try {
      return await ask;
    } finally {
      pending.delete(key);
    }
  };
}
