/**
 * The TLS identity an enrolled agent pushes with (docs/security.md): its enrollment's
 * certificate, renewed while it runs, and the vault's revocation list, fetched from the
 * control plane and kept in the state folder (`revocations.json`), so that it refuses a process
 * server whose certificate was revoked. Both stop with `signal`.
 */
import { ControlPlaneClient } from '../core/control-plane/client.ts';
import type { StoredEnrollment } from '../core/control-plane/enrollment-file.ts';
import { runRevocationPoll } from '../core/control-plane/revocation-poll.ts';
import type { Logger } from '../core/log.ts';
import type { RenewableIdentity } from '../core/tls/renewable-identity.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { startEnrollmentRenewal } from './enrollment-renewal.ts';
import { liveIdentity } from './server-tls.ts';

export async function agentIdentity(
  stateDir: string,
  e: StoredEnrollment,
  enrolled: TlsIdentity,
  o: { renewFraction?: number; revocationPollIntervalMs?: number; log: Logger; signal: AbortSignal },
): Promise<RenewableIdentity> {
  const { identity, revocations } = await liveIdentity(stateDir, enrolled, e);
  const renewal = startEnrollmentRenewal(stateDir, e, identity, { renewFraction: o.renewFraction, log: o.log });
  const client = new ControlPlaneClient({ url: e.controlPlaneUrl, credential: e.credential });
  void runRevocationPoll(client, revocations, { intervalMs: o.revocationPollIntervalMs, log: o.log, signal: o.signal });
  o.signal.addEventListener('abort', () => void renewal.close(), { once: true });
  return identity;
}
