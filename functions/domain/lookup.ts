/**
 * Reading one resource by an id that came from a request: the id is checked against its
 * kind's pattern first (a malformed id is simply not found), then looked up.
 */
import type { z } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { NotFoundError } from '../errors.ts';
import { isId, type IdKind } from './ids.ts';
import { keys, type Collection } from './keys.ts';
import { Vault } from './records.ts';

/** Throws NotFoundError unless `id` is a well-formed id of `kind`. */
export function checkId(kind: IdKind, id: string, what: string = kind): string {
  if (!isId(kind, id)) throw new NotFoundError(`no ${what} ${JSON.stringify(id.slice(0, 80))}`);
  return id;
}

export async function getVault(ctx: Context, vaultId: string): Promise<Vault> {
  const v = await ctx.repo.get(keys.vault(checkId('vault', vaultId)), Vault);
  if (!v) throw new NotFoundError(`no vault ${vaultId}`);
  return v;
}

/** One record of a vault's collection; NotFoundError if the vault or the record is missing. */
export async function getItem<S extends z.ZodType>(
  ctx: Context,
  vaultId: string,
  collection: Collection,
  kind: IdKind,
  id: string,
  schema: S,
): Promise<z.infer<S>> {
  checkId('vault', vaultId);
  const what = kind.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
  const r = await ctx.repo.get(keys.item(vaultId, collection, checkId(kind, id, what)), schema);
  if (!r) throw new NotFoundError(`no ${what} ${id} in vault ${vaultId}`);
  return r;
}

export async function listItems<S extends z.ZodType>(ctx: Context, vaultId: string, collection: Collection, schema: S): Promise<z.infer<S>[]> {
  return ctx.repo.list(keys.items(checkId('vault', vaultId), collection), schema);
}
