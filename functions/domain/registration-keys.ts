/**
 * Registration keys: short-lived secrets of one vault with which a process server, master
 * target or agent enrolls and receives its own credential. A key can enroll any number of
 * components until it expires or is revoked.
 */
import { nowIso, type Context } from '../deps.ts';
import { InvalidRequestError, NotFoundError, UnauthenticatedError } from '../errors.ts';
import { recordAudit, type Actor } from './audit.ts';
import { isId, newId } from './ids.ts';
import { checkId, getVault } from './lookup.ts';
import { keys } from './keys.ts';
import { RegistrationKey } from './records.ts';
import { issueSecret, parseToken, secretMatches } from './tokens.ts';

/** Longest lifetime of a registration key. */
export const MAX_REGISTRATION_KEY_TTL_SECONDS = 30 * 24 * 3600;

export type RegistrationKeyView = Omit<RegistrationKey, 'secretSha256'>;

function view(k: RegistrationKey): RegistrationKeyView {
  const { secretSha256: _hash, ...rest } = k;
  return rest;
}

export async function createRegistrationKey(
  ctx: Context,
  actor: Actor,
  vaultId: string,
  input: { ttlSeconds?: number; maxUses?: number },
): Promise<RegistrationKeyView & { key: string }> {
  await getVault(ctx, vaultId);
  const ttl = input.ttlSeconds ?? ctx.settings.registrationKeyTtlSeconds;
  if (ttl > MAX_REGISTRATION_KEY_TTL_SECONDS) {
    throw new InvalidRequestError(`ttlSeconds must be at most ${MAX_REGISTRATION_KEY_TTL_SECONDS}`, { field: 'ttlSeconds' });
  }
  const id = newId('registrationKey');
  const secret = issueSecret(id);
  const record: RegistrationKey = {
    id, vaultId, secretSha256: secret.secretSha256, createdAt: nowIso(ctx),
    expiresAt: new Date(ctx.now() + ttl * 1000).toISOString(), revoked: false, maxUses: input.maxUses ?? null, uses: 0,
  };
  await ctx.repo.create(keys.registrationKey(id), record);
  await recordAudit(ctx, actor, 'registration-key.create', { vaultId, targetId: id, detail: { expiresAt: record.expiresAt } });
  return { ...view(record), key: secret.token };
}

export async function listRegistrationKeys(ctx: Context, vaultId: string): Promise<RegistrationKeyView[]> {
  await getVault(ctx, vaultId);
  const all = await ctx.repo.list('v1/registration-keys/', RegistrationKey);
  return all.filter((k) => k.vaultId === vaultId).map(view);
}

export async function revokeRegistrationKey(ctx: Context, actor: Actor, vaultId: string, id: string): Promise<RegistrationKeyView> {
  checkId('registrationKey', id, 'registration key');
  const r = await ctx.repo.update(keys.registrationKey(id), RegistrationKey, (k) => ({ ...k, revoked: true }));
  if (!r || r.after.vaultId !== vaultId) throw new NotFoundError(`no registration key ${id} in vault ${vaultId}`);
  await recordAudit(ctx, actor, 'registration-key.revoke', { vaultId, targetId: id });
  return view(r.after);
}

/**
 * The key a presented token names, if it may enroll one more component now (its use is
 * counted); otherwise UnauthenticatedError saying why: unknown, revoked, expired or used up.
 */
export async function redeemRegistrationKey(ctx: Context, token: string): Promise<RegistrationKey> {
  const hint = 'create a new registration key in the vault and use it before it expires';
  const parsed = parseToken(token);
  const unknown = new UnauthenticatedError('registration key is unknown', { hint });
  if (!parsed || !isId('registrationKey', parsed.id)) throw unknown;
  const k = await ctx.repo.get(keys.registrationKey(parsed.id), RegistrationKey);
  // Only a holder of the secret learns why a known key is refused.
  if (!k || !secretMatches(parsed.secret, k.secretSha256)) throw unknown;
  if (k.revoked) throw new UnauthenticatedError(`registration key ${k.id} was revoked`, { hint });
  if (Date.parse(k.expiresAt) <= ctx.now()) throw new UnauthenticatedError(`registration key ${k.id} expired at ${k.expiresAt}`, { hint });
  const usedUp = (r: RegistrationKey) => new UnauthenticatedError(`registration key ${k.id} is used up (${r.uses ?? 0} of ${r.maxUses} enrollments)`, { hint });
  const r = await ctx.repo.update(keys.registrationKey(k.id), RegistrationKey, (cur) => {
    if (cur.maxUses && (cur.uses ?? 0) >= cur.maxUses) throw usedUp(cur);
    return { ...cur, uses: (cur.uses ?? 0) + 1 };
  });
  if (!r) throw unknown;
  return r.after;
}
