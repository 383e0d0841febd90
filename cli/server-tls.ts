/**
 * What an enrolled process server or master target serves TLS with (docs/security.md): its
 * certificate and key from the enrollment, renewed in place while it runs; the vault's
 * revocation list kept in its data folder; and for a master target who may ship which machine.
 * `tidemark up` and the standalone `process-server` and `master-target` commands both build
 * their servers from these.
 */
import { join } from 'node:path';
import { ENROLLMENT_FILE, type StoredEnrollment } from '../core/control-plane/enrollment-file.ts';
import { renewableIdentity, type RenewableIdentity } from '../core/tls/renewable-identity.ts';
import { RevocationList } from '../core/tls/revocation-list.ts';
import { identityOfEnrollment, type TlsIdentity } from '../core/tls/tls-identity.ts';
import type { MasterTargetPeers } from '../master-target/peer-access.ts';
import { IngestAssignments } from '../master-target/site-link/ingest-assignments.ts';

/** The certificate of the enrollment kept in `dataDir`, or undefined if it was made before certificates. */
export function serverIdentity(dataDir: string, e: StoredEnrollment): Promise<TlsIdentity | undefined> {
  return identityOfEnrollment(join(dataDir, ENROLLMENT_FILE), e);
}

export interface LiveIdentity {
  /** Renewed in place (`cli/enrollment-renewal.ts`); as a client it refuses servers on `revocations`. */
  identity: RenewableIdentity;
  /** The vault's revoked certificates as last fetched, kept in `DATA/revocations.json`. */
  revocations: RevocationList;
}

/** The enrollment's identity as a running component uses it: renewable, with the revocation list kept in `dataDir`. */
export async function liveIdentity(dataDir: string, identity: TlsIdentity, e: StoredEnrollment): Promise<LiveIdentity> {
  const revocations = await RevocationList.open(dataDir, e.vaultId);
  return { identity: renewableIdentity({ ...identity, revocations }), revocations };
}

/** `startProcessServer({ tls })`: agents and operators of the vault are known by their certificates. */
export function processServerTls(identity: TlsIdentity, e: StoredEnrollment): { identity: TlsIdentity; vaultId: string } {
  return { identity, vaultId: e.vaultId };
}

export interface MasterTargetTls {
  /** `startMasterTarget({ tls })`. */
  tls: TlsIdentity;
  /** `startMasterTarget({ peers })`. */
  peers: MasterTargetPeers;
  /** The site link keeps these from its protection commands (`startMasterTargetSiteLink({ ingestAssignments })`). */
  ingestAssignments: IngestAssignments;
  /** What the site link presents when it calls this master target's own API (`startMasterTargetSiteLink({ tls })`). */
  siteLinkTls: TlsIdentity;
}

/**
 * The TLS settings of a master target enrolled in `dataDir`. `enrolledHost` is the host of the
 * URL it enrolled with, which its certificate names: its site link calls it on the listen
 * address (loopback for a wildcard) and checks the certificate against that host instead.
 */
export async function masterTargetTls(dataDir: string, identity: RenewableIdentity, e: StoredEnrollment, enrolledHost?: string): Promise<MasterTargetTls> {
  // The master target lets a process server ship only the machines assigned to it.
  const ingestAssignments = await IngestAssignments.open(dataDir);
  return {
    tls: identity,
    peers: { vaultId: e.vaultId, selfId: e.serverId!, shipsFor: (m: string) => ingestAssignments.processServerOf(m) },
    ingestAssignments,
    siteLinkTls: enrolledHost ? identity.forHost(enrolledHost) : identity,
  };
}
