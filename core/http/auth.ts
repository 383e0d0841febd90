/**
 * Bearer-token check shared by the component servers. With no token configured every request
 * passes (a lab setup); with one, everything but `/healthz` needs it.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log.ts';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** True when `presented` equals `expected`, in time independent of where they differ. */
export function tokenMatches(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

export function bearerAuth(token: string | undefined, log: Logger): MiddlewareHandler {
  return async (c, next) => {
    if (!token || c.req.path === '/healthz') return next();
    const header = c.req.header('authorization');
    const presented = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (!tokenMatches(token, presented)) {
      log.warn('request refused: bad credentials', {
        method: c.req.method,
        path: c.req.path,
        from: c.env && typeof c.env === 'object' && 'incoming' in c.env
          ? (c.env as { incoming: { socket: { remoteAddress?: string } } }).incoming.socket.remoteAddress
          : undefined,
        presented: presented === undefined ? 'none' : 'wrong',
      });
      return c.json({ error: 'missing or wrong bearer token', hint: 'set TIDEMARK_TOKEN (or --token) to the same value on every component' }, 401);
    }
    return next();
  };
}
