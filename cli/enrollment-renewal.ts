/**
 * Every enrolled component (agent, process server, master target) renews its certificate
 * before it expires and keeps each new one in place of the old in its enrollment folder
 * (`core/control-plane/certificate-renewal.ts`, docs/security.md).
 */
import { join } from 'node:path';
import { ControlPlaneClient } from '../core/control-plane/client.ts';
import { startCertificateRenewal, type CertificateRenewal } from '../core/control-plane/certificate-renewal.ts';
import { ENROLLMENT_FILE, saveRenewedEnrollment, type StoredEnrollment } from '../core/control-plane/enrollment-file.ts';
import type { Logger } from '../core/log.ts';
import type { RenewableIdentity } from '../core/tls/renewable-identity.ts';

/** Renews the certificate of the enrollment kept in `dir` before it expires. */
export function startEnrollmentRenewal(
  dir: string,
  e: StoredEnrollment,
  identity: RenewableIdentity,
  o: { renewFraction?: number; log: Logger },
): CertificateRenewal {
  return startCertificateRenewal({
    client: new ControlPlaneClient({ url: e.controlPlaneUrl, credential: e.credential }),
    identity, name: e.name, renewFraction: o.renewFraction, log: o.log,
    save: (renewed) => saveRenewedEnrollment(join(dir, ENROLLMENT_FILE), renewed),
  });
}
