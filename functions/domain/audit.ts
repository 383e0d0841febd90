/**
 * The audit log: one write-once object per operator action, keyed by time so that a listing
 * is chronological. Entries carry ids and names, never secrets.
 */
import type { Context } from '../deps.ts';
import { newId } from './ids.ts';
import { keys } from './keys.ts';
import { AuditEntry, type Role } from './records.ts';

/** Who did something: an operator token, or the control plane itself (`system`). */
export interface Actor {
  readonly tokenId: string;
  readonly name: string;
  readonly role: Role;
}

/** The control plane acting on its own (scheduled drills). */
export const SYSTEM_ACTOR: Actor = { tokenId: 'system', name: 'scheduler', role: 'admin' };

export async function recordAudit(
  ctx: Context,
  actor: Actor,
  action: string,
  target: { vaultId: string | null; targetId?: string | null; detail?: Record<string, unknown> },
): Promise<AuditEntry> {
  const atMs = ctx.now();
  const entry: AuditEntry = {
    id: newId('audit'),
    vaultId: target.vaultId,
    at: new Date(atMs).toISOString(),
    actor: { tokenId: actor.tokenId, name: actor.name, role: actor.role },
    action,
    targetId: target.targetId ?? null,
    detail: target.detail ?? {},
  };
  await ctx.repo.create(keys.auditEntry(target.vaultId, atMs, entry.id), entry);
  ctx.log.info('operator action', { action, actor: actor.name, vaultId: target.vaultId, targetId: entry.targetId });
  return entry;
}

/** The newest entries first. */
export async function listAudit(ctx: Context, vaultId: string | null, limit: number): Promise<AuditEntry[]> {
  return ctx.repo.list(keys.auditEntries(vaultId), AuditEntry, { newestFirst: true, limit });
}
