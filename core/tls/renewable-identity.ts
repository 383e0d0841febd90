/**
 * A TLS identity whose certificate and key can be replaced while the component runs (renewal,
 * docs/security.md). Every holder reads `cert` and `key` when it connects: clients get a new
 * kept-alive agent for the new certificate (`core/http/tls-client.ts`), and servers started
 * with it serve the new certificate from their next handshake (`core/http/serve.ts`, which
 * listens for `onRenew`). Views for another server host share the same certificate.
 *
 * @example
 *   const id = renewableIdentity(await identityOfEnrollment(path, e));
 *   id.onRenew(() => log.info('renewed'));
 *   id.renew(newCertPem, newKeyPem);
 */
import type { TlsIdentity } from './tls-identity.ts';

export interface RenewableIdentity extends TlsIdentity {
  /** Replaces the certificate and key, then tells every listener. */
  renew(cert: string, key: string): void;
  /** Called after each renewal. */
  onRenew(listener: () => void): void;
  /** The same identity, checking servers against `serverHost` (see `TlsIdentity.serverHost`). */
  forHost(serverHost: string): TlsIdentity;
}

export function renewableIdentity(initial: TlsIdentity): RenewableIdentity {
  let cert = initial.cert;
  let key = initial.key;
  const listeners: Array<() => void> = [];
  const view = (serverHost: string | undefined): TlsIdentity => ({
    ca: initial.ca,
    get cert() { return cert; },
    get key() { return key; },
    ...(serverHost ? { serverHost } : {}),
    ...(initial.revocations ? { revocations: initial.revocations } : {}),
  });
  return Object.assign(view(initial.serverHost), {
    renew(newCert: string, newKey: string) {
      cert = newCert;
      key = newKey;
      for (const l of listeners) l();
    },
    onRenew(listener: () => void) {
      listeners.push(listener);
    },
    forHost: (serverHost: string) => view(serverHost),
  });
}

/** True when `identity` can be renewed in place. */
export function isRenewable(identity: TlsIdentity | undefined): identity is RenewableIdentity {
  return typeof (identity as Partial<RenewableIdentity> | undefined)?.onRenew === 'function';
}
