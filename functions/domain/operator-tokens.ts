/**
 * Operator tokens: bearer tokens for people and tools, each with a role. `viewer` reads,
 * `operator` also changes protection, plans, jobs and drills, `admin` also manages vaults,
 * registration keys and tokens.
 */
import { nowIso, type Context } from '../deps.ts';
import { recordAudit, type Actor } from './audit.ts';
import { newId } from './ids.ts';
import { keys } from './keys.ts';
import { OperatorToken, ROLES, type Role } from './records.ts';
import { issueSecret } from './tokens.ts';

/** True if `role` may do what `needed` may. */
export function roleAllows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** A token as shown to operators: never its hash. */
export type OperatorTokenView = Omit<OperatorToken, 'secretSha256'>;

export function viewOfToken(t: OperatorToken): OperatorTokenView {
  const { secretSha256: _hash, ...view } = t;
  return view;
}

/** Creates a token; the returned `token` is shown once and stored nowhere. */
export async function createOperatorToken(
  ctx: Context,
  actor: Actor | null,
  input: { name: string; role: Role },
): Promise<OperatorTokenView & { token: string }> {
  const id = newId('operatorToken');
  const secret = issueSecret(id);
  const record: OperatorToken = { id, name: input.name, role: input.role, secretSha256: secret.secretSha256, createdAt: nowIso(ctx) };
  await ctx.repo.create(keys.operatorToken(id), record);
  if (actor) await recordAudit(ctx, actor, 'operator-token.create', { vaultId: null, targetId: id, detail: { name: input.name, role: input.role } });
  return { ...viewOfToken(record), token: secret.token };
}

export async function listOperatorTokens(ctx: Context): Promise<OperatorTokenView[]> {
  return (await ctx.repo.list(keys.operatorTokens(), OperatorToken)).map(viewOfToken);
}
