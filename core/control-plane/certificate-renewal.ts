/**
 * Components renew their own certificates (docs/security.md, "Revocation and renewal"): once
 * less than `renewFraction` of the current certificate's lifetime is left, a new key is made,
 * its request is signed with the current key and sent with the current certificate to
 * `POST /api/v1/site/certificate/renew`; the answer is kept (`save`) and then used from the
 * next connection on (`RenewableIdentity.renew`). A failed attempt is retried at the next
 * check; the current certificate stays in use until it expires.
 *
 * @example
 *   const renewal = startCertificateRenewal({ client, identity, name: 'ps1', save, log });
 *   await renewal.close();
 */
import { X509Certificate, sign } from 'node:crypto';
import type { Logger } from '../log.ts';
import { pause } from '../pause.ts';
import type { RenewableIdentity } from '../tls/renewable-identity.ts';
import { serialOfPem } from '../tls/serial.ts';
import type { TlsIdentity } from '../tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../tls/x509.ts';
import type { ControlPlaneClient } from './client.ts';
import type { RenewalRequest } from './protocol.ts';

/** Renew when less than this share of the lifetime is left (a quarter: about 91 of 365 days). */
export const DEFAULT_RENEW_FRACTION = 0.25;
/** Checks happen a fiftieth of the lifetime apart, within these bounds. */
const MIN_CHECK_MS = 1_000;
const MAX_CHECK_MS = 3_600_000;

export interface RenewedIdentity {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly serial: string;
  readonly notAfter: string;
}

/** When the certificate `pem` is due for renewal (epoch ms), and how far apart checks are. */
export function renewalSchedule(pem: string, renewFraction: number): { dueAtMs: number; checkEveryMs: number } {
  const c = new X509Certificate(pem);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  const lifetime = Math.max(0, to - from);
  return { dueAtMs: to - renewFraction * lifetime, checkEveryMs: Math.min(MAX_CHECK_MS, Math.max(MIN_CHECK_MS, lifetime / 50)) };
}

/** The renewal request for a new key: signed by the current key (proof that its holder asks). */
export async function renewalRequest(current: Pick<TlsIdentity, 'cert' | 'key'>, name: string): Promise<{ request: RenewalRequest; keyPem: string }> {
  const keys = await generateKeyPair();
  const csr = await createCsr(keys, name);
  const signature = sign('sha256', Buffer.from(csr, 'utf8'), current.key).toString('base64');
  return { request: { certificate: current.cert, csr, signature }, keyPem: keys.privateKeyPem };
}

/** Asks the control plane for a new certificate of `current`'s identity. */
export async function renewCertificate(client: ControlPlaneClient, current: TlsIdentity, name: string, signal?: AbortSignal): Promise<RenewedIdentity> {
  const { request, keyPem } = await renewalRequest(current, name);
  const answer = await client.renewCertificate(request, { signal });
  return { cert: answer.certificate, key: keyPem, ca: answer.caCertificate, serial: answer.serial, notAfter: answer.notAfter };
}

export interface CertificateRenewalOptions {
  readonly client: ControlPlaneClient;
  readonly identity: RenewableIdentity;
  /** The name in the request's subject (the control plane names the certificate by the enrolled identity anyway). */
  readonly name: string;
  /** Keeps the new certificate and key durably before they are used. */
  readonly save: (renewed: RenewedIdentity) => Promise<void>;
  /** @default DEFAULT_RENEW_FRACTION */
  readonly renewFraction?: number;
  readonly log: Logger;
}

export interface CertificateRenewal {
  close(): Promise<void>;
}

export function startCertificateRenewal(o: CertificateRenewalOptions): CertificateRenewal {
  const stop = new AbortController();
  const fraction = o.renewFraction ?? DEFAULT_RENEW_FRACTION;
  const log = o.log.child({ task: 'certificate-renewal' });
  const loop = (async () => {
    while (!stop.signal.aborted) {
      const { dueAtMs, checkEveryMs } = renewalSchedule(o.identity.cert, fraction);
      if (Date.now() >= dueAtMs) {
        const old = serialOfPem(o.identity.cert);
        try {
          const renewed = await renewCertificate(o.client, o.identity, o.name, stop.signal);
          await o.save(renewed);
          o.identity.renew(renewed.cert, renewed.key);
          log.info('certificate renewed', { serial: renewed.serial, notAfter: renewed.notAfter, previous: old });
        } catch (err) {
          if (stop.signal.aborted) break;
          log.warn('certificate renewal failed; the current certificate stays in use', { serial: old, error: err as Error });
        }
      }
      // Renewal alone keeps no component running.
      await pause(checkEveryMs, stop.signal, { unref: true });
    }
  })();
  return {
    async close() {
      stop.abort();
      await loop;
    },
  };
}
