/**
 * Who is calling: a bearer token is either an operator token (`opt_…`), a site credential
 * (`crd_…`) or the bootstrap admin token configured by hash. Anything else is refused.
 */
import type { Context } from '../deps.ts';
import { UnauthenticatedError } from '../errors.ts';
import type { Actor } from './audit.ts';
import { isId } from './ids.ts';
import { keys } from './keys.ts';
import { Credential, OperatorToken, type SitePrincipal } from './records.ts';
import { parseToken, secretMatches, sha256Hex } from './tokens.ts';

export type Principal =
  | { readonly kind: 'operator'; readonly actor: Actor }
  | { readonly kind: 'site'; readonly vaultId: string; readonly credentialId: string; readonly site: SitePrincipal };

const refused = () =>
  new UnauthenticatedError('missing or unknown credential', { hint: 'send Authorization: Bearer <token> with a valid token' });

export async function authenticate(ctx: Context, authorization: string | undefined): Promise<Principal> {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
  if (!token) throw refused();
  const bootstrap = ctx.settings.bootstrapAdminTokenSha256;
  if (bootstrap && secretMatches(token, bootstrap)) {
    return { kind: 'operator', actor: { tokenId: 'bootstrap', name: 'bootstrap admin', role: 'admin' } };
  }
  const parsed = parseToken(token);
  if (!parsed) throw refused();
  if (isId('operatorToken', parsed.id)) {
    const t = await ctx.repo.get(keys.operatorToken(parsed.id), OperatorToken);
    if (!t || !secretMatches(parsed.secret, t.secretSha256)) throw refused();
    return { kind: 'operator', actor: { tokenId: t.id, name: t.name, role: t.role } };
  }
  if (isId('credential', parsed.id)) {
    const c = await ctx.repo.get(keys.credential(parsed.id), Credential);
    if (!c || c.revoked || !secretMatches(parsed.secret, c.secretSha256)) throw refused();
    return { kind: 'site', vaultId: c.vaultId, credentialId: c.id, site: c.principal };
  }
  throw refused();
}

/** sha256 (hex) of a whole token, the form `bootstrapAdminTokenSha256` takes. */
export function bootstrapHashOf(token: string): string {
  return sha256Hex(token);
}
