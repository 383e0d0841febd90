/**
 * Who may use the master target's API (docs/security.md). Over TLS, by the certificate the
 * client presented: an operator, and the master target itself (its control-plane link calls
 * its own API), may do everything; a process server may only read a stream's position, send
 * it batches and read its block hashes (for its agents' resyncs), and only for machines the control plane assigned to that process server
 * (`shipsFor`, learned from `protection.enable` commands); agents may not use it. The shared
 * token, when one is configured, may do everything, as in a lab.
 */
import type { MiddlewareHandler } from 'hono';
import { tokenMatches } from '../core/http/auth.ts';
import type { Logger } from '../core/log.ts';
import { peerIdentity } from '../core/tls/peer.ts';

export interface MasterTargetPeers {
  /** This master target's vault and server id (from its enrollment). */
  readonly vaultId: string;
  readonly selfId: string;
  /** The process server a machine's streams come from now; absent (no control plane link), any process server of the vault. */
  readonly shipsFor?: (machineName: string) => string | undefined;
}

/** What a process server may ask, and for which machine: [method, pattern whose group 1 is the machine]. */
const SHIPPING: Array<[string, RegExp]> = [
  ['GET', /^\/v1\/streams\/([^/]+)\/[^/]+$/],
  ['POST', /^\/v1\/streams\/([^/]+)\/[^/]+\/batches$/],
  ['GET', /^\/v1\/machines\/([^/]+)\/disks\/[^/]+\/block-hashes$/],
];

export function peerAccess(o: { token?: string; peers: MasterTargetPeers; log: Logger }): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.path === '/healthz') return next();
    const header = c.req.header('authorization');
    if (o.token && tokenMatches(o.token, header?.startsWith('Bearer ') ? header.slice(7) : undefined)) return next();
    const peer = peerIdentity(c);
    const refuse = (status: 401 | 403, error: string, hint: string) => {
      o.log.warn('request refused', { method: c.req.method, path: c.req.path, status, peer: peer && `${peer.role} ${peer.name}`, reason: error });
      return c.json({ error, hint }, status);
    };
    if (!peer) return refuse(401, 'no client certificate from this vault', "present a certificate issued by the vault's CA (mutual TLS)");
    if (peer.vaultId !== o.peers.vaultId) return refuse(403, `certificate of vault ${peer.vaultId}, not of this master target's vault`, 'use a certificate of this vault');
    if (peer.role === 'operator' || (peer.role === 'master-target' && peer.id === o.peers.selfId)) return next();
    const shipping = SHIPPING.map(([method, re]) => (method === c.req.method ? re.exec(c.req.path) : null)).find(Boolean);
    if (peer.role !== 'process-server' || !shipping) {
      return refuse(403, `a ${peer.role} certificate may not ${c.req.method} ${c.req.path}`, 'process servers may only read stream positions and block hashes, and send batches');
    }
    const machine = decodeURIComponent(shipping[1]!);
    const assigned = o.peers.shipsFor?.(machine);
    if (o.peers.shipsFor && assigned !== peer.id) {
      return refuse(403, `machine ${machine} is not assigned to process server ${peer.name} (${peer.id})`, 'the control plane names the process server of each protected machine');
    }
    return next();
  };
}
