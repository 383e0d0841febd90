/**
 * Process servers accept agents by their own site credential: the process server asks the
 * control plane whether a presented credential is a valid agent credential of a machine
 * whose protection names this process server, and learns that machine's name and disks.
 * The answer never reveals anything about credentials of other vaults or servers beyond
 * "not valid here".
 */
import type { AgentVerification } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { isId } from './ids.ts';
import { keys } from './keys.ts';
import { Credential, Machine } from './records.ts';
import { parseToken, secretMatches } from './tokens.ts';

const invalid = (reason: string): AgentVerification => ({ valid: false, reason });

export async function verifyAgentCredential(ctx: Context, vaultId: string, processServerId: string, presented: string): Promise<AgentVerification> {
  const parsed = parseToken(presented);
  if (!parsed || !isId('credential', parsed.id)) return invalid('not a site credential');
  const c = await ctx.repo.get(keys.credential(parsed.id), Credential);
  if (!c || c.revoked || !secretMatches(parsed.secret, c.secretSha256)) return invalid('unknown or revoked credential');
  if (c.vaultId !== vaultId || c.principal.kind !== 'agent') return invalid('not an agent credential of this vault');
  const m = await ctx.repo.get(keys.item(vaultId, 'machines', c.principal.machineId), Machine);
  if (!m) return invalid('the machine of this credential no longer exists');
  if (m.protection?.processServerId !== processServerId) return invalid('the machine is not assigned to this process server');
  return { valid: true, machineId: m.id, machineName: m.name, disks: m.disks.map((d) => ({ id: d.id, name: d.name })) };
}
