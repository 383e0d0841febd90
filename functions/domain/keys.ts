/**
 * The object key layout, version 1 (docs/control-plane-store.md). Every key is built here
 * from checked ids; nothing else concatenates keys.
 */
import { checkObjectKey } from '../store/object-store.ts';

export const KEY_LAYOUT_VERSION = 'v1';

/** Per-vault collections, each `v1/vault-data/<vaultId>/<collection>/<id>.json`. */
export type Collection =
  | 'sites' | 'servers' | 'machines' | 'policies' | 'plans' | 'jobs' | 'drills' | 'drill-reports' | 'alerts'
  /** One per machine, by machine id: the points its master target keeps. */
  | 'recovery-points'
  /** One per issued certificate, by its serial (docs/security.md). */
  | 'certificates';

export const keys = {
  vault: (vaultId: string) => checkObjectKey(`v1/vaults/${vaultId}.json`),
  vaults: () => 'v1/vaults/',
  item: (vaultId: string, collection: Collection, id: string) => checkObjectKey(`v1/vault-data/${vaultId}/${collection}/${id}.json`),
  items: (vaultId: string, collection: Collection) => `v1/vault-data/${vaultId}/${collection}/`,
  registrationKey: (id: string) => checkObjectKey(`v1/registration-keys/${id}.json`),
  credential: (id: string) => checkObjectKey(`v1/credentials/${id}.json`),
  credentials: () => 'v1/credentials/',
  /** The vault's certificate authority, its private key included (docs/security.md). */
  vaultCa: (vaultId: string) => checkObjectKey(`v1/vault-ca/${vaultId}.json`),
  /** The vault's list of revoked certificates, as served to its process servers and master targets. */
  revocations: (vaultId: string) => checkObjectKey(`v1/revocations/${vaultId}.json`),
  operatorToken: (id: string) => checkObjectKey(`v1/operator-tokens/${id}.json`),
  operatorTokens: () => 'v1/operator-tokens/',
  /** Audit entries sort by time: 13-digit epoch milliseconds, then the entry id. */
  auditEntry: (vaultId: string | null, atMs: number, id: string) =>
    checkObjectKey(`v1/audit/${vaultId ?? 'global'}/${String(atMs).padStart(13, '0')}-${id}.json`),
  auditEntries: (vaultId: string | null) => `v1/audit/${vaultId ?? 'global'}/`,
};
