/**
 * Who a certificate names (docs/security.md, version 1). Every component certificate that a
 * vault's CA issues carries one URI in its subject alternative names,
 * `tidemark://<vaultId>/<role>/<id>`, and the component's name as its subject common name.
 * Servers read the identity of a TLS peer from there; nothing else in a certificate grants
 * anything.
 */
export const IDENTITY_ROLES = ['agent', 'process-server', 'master-target', 'operator'] as const;
export type IdentityRole = (typeof IDENTITY_ROLES)[number];

export interface ComponentIdentity {
  /** The vault whose CA issued the certificate. */
  readonly vaultId: string;
  readonly role: IdentityRole;
  /** Machine id (agents), server id (process servers, master targets), or operator certificate id. */
  readonly id: string;
  /** Machine name (agents: the only stream names it may write), server or operator name. */
  readonly name: string;
}

const ID = /^[a-z]{3}_[a-z2-7]{20}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;

/** The URI that names an identity in a certificate. */
export function identityUri(i: Pick<ComponentIdentity, 'vaultId' | 'role' | 'id'>): string {
  return `tidemark://${i.vaultId}/${i.role}/${i.id}`;
}

/** Parses an identity URI; undefined if it is not one. */
export function parseIdentityUri(uri: string, name: string): ComponentIdentity | undefined {
  const m = /^tidemark:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (!m || !ID.test(m[1]!) || !ID.test(m[3]!) || !NAME.test(name)) return undefined;
  const role = m[2] as IdentityRole;
  if (!IDENTITY_ROLES.includes(role)) return undefined;
  return { vaultId: m[1]!, role, id: m[3]!, name };
}

/**
 * The identity in a peer certificate as Node's TLS socket shows it (`subjectaltname` like
 * `URI:tidemark://…, IP Address:127.0.0.1` and `subject.CN`); undefined when it names none.
 */
export function identityOfPeerCertificate(cert: { subject?: { CN?: string | string[] }; subjectaltname?: string } | undefined): ComponentIdentity | undefined {
  if (!cert?.subjectaltname) return undefined;
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (typeof name !== 'string') return undefined;
  const uris = cert.subjectaltname.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  if (uris.length !== 1) return undefined;
  return parseIdentityUri(uris[0]!, name);
}
