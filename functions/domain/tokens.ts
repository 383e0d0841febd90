/**
 * Bearer secrets: `<id>.<secret>` where `id` names the stored record (an operator token,
 * a registration key or a site credential) and `secret` is 32 random bytes in base64url.
 * Only the SHA-256 of the secret is stored; comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface IssuedSecret {
  /** The whole bearer token, shown once to its owner. */
  readonly token: string;
  /** What is stored: hex SHA-256 of the secret part. */
  readonly secretSha256: string;
}

/** A new token for the record `id`. */
export function issueSecret(id: string): IssuedSecret {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${id}.${secret}`, secretSha256: sha256Hex(secret) };
}

/** Splits a presented token; `undefined` if it is not of the form `<id>.<secret>`. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1 || token.length > 256) return undefined;
  return { id: token.slice(0, dot), secret: token.slice(dot + 1) };
}

/** True if `secret` hashes to `storedSha256`, in time independent of where they differ. */
export function secretMatches(secret: string, storedSha256: string): boolean {
  const a = Buffer.from(sha256Hex(secret), 'hex');
  const b = Buffer.from(storedSha256, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
