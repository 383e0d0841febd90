/**
 * Who may use the process server's API over TLS, by the certificate the client presented
 * (docs/security.md): an operator may do what the shared token may; an agent may touch only
 * its own machine's streams (the name its certificate carries), and only while that machine
 * is assigned to this process server; other components may not use it.
 */
import type { ComponentIdentity } from '../core/tls/identity.ts';

export interface ProcessServerPeers {
  /** This process server's vault: certificates of another vault are refused. */
  readonly vaultId: string;
  /** Whether a machine is assigned here now; absent (no control plane link), every agent of the vault is. */
  readonly isAssigned?: (machineId: string) => boolean;
}

export type PeerVerdict =
  | { readonly kind: 'operator' }
  | { readonly kind: 'agent'; readonly machine: string }
  | { readonly kind: 'refused'; readonly error: string };

export function peerVerdict(peer: ComponentIdentity, o: ProcessServerPeers): PeerVerdict {
  if (peer.vaultId !== o.vaultId) return { kind: 'refused', error: `certificate of vault ${peer.vaultId}, not of this process server's vault` };
  if (peer.role === 'operator') return { kind: 'operator' };
  if (peer.role !== 'agent') return { kind: 'refused', error: `a ${peer.role} certificate may not use the process server's API` };
  if (o.isAssigned && !o.isAssigned(peer.id)) {
    return { kind: 'refused', error: `machine ${peer.name} (${peer.id}) is not assigned to this process server` };
  }
  return { kind: 'agent', machine: peer.name };
}
