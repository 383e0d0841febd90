/**
 * Certificate serial numbers as Tidemark writes them (docs/security.md): lowercase hex without
 * leading zeros. Node shows a peer's serial in uppercase and a DER integer may carry a leading
 * zero byte; every place that stores or compares serials goes through `normalizeSerial`.
 *
 * @example
 *   normalizeSerial('00A1B2') === 'a1b2'
 */
import { X509Certificate } from 'node:crypto';

export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+/, '') || '0';
}

/** The serial of a PEM certificate, normalized. */
export function serialOfPem(pem: string): string {
  return normalizeSerial(new X509Certificate(pem).serialNumber);
}

/** Serials as the control plane's API and the revocation file take them: 1 to 40 hex digits. */
export const SERIAL_PATTERN = /^[0-9a-f]{1,40}$/;
