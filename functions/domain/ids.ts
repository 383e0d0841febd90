/**
 * Resource ids: a kind prefix, `_`, and 20 characters of lowercase base32 (100 random bits),
 * e.g. `vlt_k3m9x0q2c7d4n8r5t1wz`. Ids from requests are checked against their kind's
 * pattern before anything looks them up; they are safe as object-key segments.
 */
import { randomBytes } from 'node:crypto';

export const ID_PREFIX = {
  vault: 'vlt',
  registrationKey: 'rgk',
  credential: 'crd',
  operatorToken: 'opt',
  site: 'sit',
  server: 'srv',
  machine: 'mch',
  disk: 'dsk',
  policy: 'pol',
  plan: 'pln',
  job: 'job',
  drill: 'drl',
  drillReport: 'rpt',
  alert: 'alr',
  audit: 'aud',
  command: 'cmd',
  certificate: 'crt',
} as const;

export type IdKind = keyof typeof ID_PREFIX;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_BODY_CHARS = 20;

/** Lowercase base32 of `bytes`, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** A new random id of the given kind. */
export function newId(kind: IdKind): string {
  return `${ID_PREFIX[kind]}_${base32(randomBytes(13)).slice(0, ID_BODY_CHARS)}`;
}

/** The pattern of ids of one kind (for schemas and checks). */
export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${ID_PREFIX[kind]}_[a-z2-7]{${ID_BODY_CHARS}}$`);
}

/** True if `id` is a well-formed id of `kind`. */
export function isId(kind: IdKind, id: string): boolean {
  return idPattern(kind).test(id);
}

/** A stable id of `kind` derived from `parts` (alerts: one per kind and disk). */
export function derivedId(kind: IdKind, digest: Uint8Array): string {
  return `${ID_PREFIX[kind]}_${base32(digest).slice(0, ID_BODY_CHARS)}`;
}
