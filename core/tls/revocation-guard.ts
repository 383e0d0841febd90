/**
 * Refuses requests made with a revoked client certificate (docs/security.md): 403 naming the
 * certificate, its holder and when it was revoked. `/healthz` stays open. It runs before a
 * server's other checks, so a revoked certificate is refused whatever it would have allowed.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log.ts';
import { peerSerial } from './peer.ts';
import type { RevocationList } from './revocation-list.ts';

export function refuseRevoked(list: RevocationList, log: Logger): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.path === '/healthz' || list.size === 0) return next();
    const serial = peerSerial(c);
    const revoked = serial === undefined ? undefined : list.entry(serial);
    if (!revoked) return next();
    const error = `certificate ${revoked.serial} (${revoked.role} ${revoked.name}) was revoked at ${revoked.revokedAt}`;
    log.warn('request refused: revoked certificate', { method: c.req.method, path: c.req.path, serial: revoked.serial, role: revoked.role, subjectId: revoked.subjectId });
    return c.json({ error, hint: 'the vault admin revoked it: enroll this component again with a registration key' }, 403);
  };
}
