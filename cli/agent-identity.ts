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
import { renewableIdentity, type RenewableIdentity } from '../core/tls/renewable-identity.ts';
import { RevocationList } from '../core/tls/revocation-list.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { startEnrollmentRenewal } from './enrollment-renewal.ts';

export async function agentIdentity(
  stateDir: string,
  e: StoredEnrollment,
  enrolled: TlsIdentity,
  o: { renewFraction?: number; revocationPollIntervalMs?: number; log: Logger; signal: AbortSignal },
): Promise<RenewableIdentity> {
  const revocations = await RevocationList.open(stateDir, e.vaultId);
  const identity = renewableIdentity({ ...enrolled, revocations });
  const renewal = startEnrollmentRenewal(stateDir, e, identity, { renewFraction: o.renewFraction, log: o.log });
  const client = new ControlPlaneClient({ url: e.controlPlaneUrl, credential: e.credential });
  void runRevocationPoll(client, revocations, { intervalMs: o.revocationPollIntervalMs, log: o.log, signal: o.signal });
  o.signal.addEventListener('abort', () => void renewal.close(), { once: true });
  return identity;
}
