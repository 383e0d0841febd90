/**
 * The Hono environment of the API and the two guards every handler starts with:
 * `operator(c, role)` for operator endpoints, `site(c)` for site endpoints.
 */
import type { Context as HonoContext } from 'hono';
import type { Actor } from '../domain/audit.ts';
import type { Principal } from '../domain/authenticate.ts';
import { roleAllows } from '../domain/operator-tokens.ts';
import type { Role, SitePrincipal } from '../domain/records.ts';
import { ForbiddenError, UnauthenticatedError } from '../errors.ts';

export interface AppEnv {
  Variables: { principal?: Principal };
}

/** The calling operator, if its role is at least `needed`; otherwise 401 or 403. */
export function operator(c: HonoContext<AppEnv>, needed: Role): Actor {
  const p = c.get('principal');
  if (!p) throw new UnauthenticatedError('missing or unknown credential');
  if (p.kind !== 'operator') throw new ForbiddenError('a site credential cannot use operator endpoints');
  if (!roleAllows(p.actor.role, needed)) {
    throw new ForbiddenError(`this needs the ${needed} role; the token has ${p.actor.role}`, { hint: 'ask an admin for a token with that role' });
  }
  return p.actor;
}

export interface SiteCaller {
  readonly vaultId: string;
  readonly principal: SitePrincipal;
}

/** The calling site component; operators get 403 here. */
export function site(c: HonoContext<AppEnv>): SiteCaller {
  const p = c.get('principal');
  if (!p) throw new UnauthenticatedError('missing or unknown credential');
  if (p.kind !== 'site') throw new ForbiddenError('site endpoints take a site credential, not an operator token');
  return { vaultId: p.vaultId, principal: p.site };
}

/** The calling process server or master target; agents get 403. */
export function server(c: HonoContext<AppEnv>): { vaultId: string; serverId: string; role: 'process-server' | 'master-target' } {
  const s = site(c);
  if (s.principal.kind !== 'server') throw new ForbiddenError('only process servers and master targets use this endpoint');
  return { vaultId: s.vaultId, serverId: s.principal.serverId, role: s.principal.role };
}
