/**
 * What the console needs beyond the resource endpoints: who is signed in (`GET /session`),
 * each machine's recent health and recovery points (`GET …/history`), and editing a recovery
 * plan (`PUT …/plans/{planId}`). Also records heartbeats into the machine history (see
 * `machine-history.ts`); register this before the site routes so that recorder runs.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { Heartbeat } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { recordAudit } from '../domain/audit.ts';
import { keys } from '../domain/keys.ts';
import { getItem, getVault, listItems } from '../domain/lookup.ts';
import { Job, Machine, Plan, Role } from '../domain/records.ts';
import { ConflictError, InvalidRequestError, NotFoundError } from '../errors.ts';
import { operator, type AppEnv } from './env.ts';
import { PlanInput } from './plan-routes.ts';
import { MachineHistory, readHistory, recordHeartbeat } from './machine-history.ts';
import { bearer, ErrorBody, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

const Session = z.object({ tokenId: z.string(), name: z.string(), role: Role }).openapi('Session');

/** A plan is replaced whole: the same body as when it was created. */
const PlanUpdate = PlanInput;

export function registerConsoleRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  // After a heartbeat was accepted, add it to the history of the machines it reports on.
  app.use('/site/heartbeat', async (c, next) => {
    await next();
    const p = c.get('principal');
    if (c.req.method !== 'POST' || c.res.status !== 202 || p?.kind !== 'site' || p.site.kind !== 'server') return;
    const hb = Heartbeat.safeParse(await c.req.json().catch(() => undefined));
    if (!hb.success) return;
    try {
      await recordHeartbeat(ctx, p.vaultId, p.site.serverId, hb.data);
    } catch (err) {
      ctx.log.warn('machine history not recorded', { vaultId: p.vaultId, serverId: p.site.serverId, error: err as Error });
    }
  });

  app.openapi(
    createRoute({
      method: 'get', path: '/session', tags: ['console'], security: bearer, summary: 'the operator token in use: its name and role',
      responses: { 200: jsonResponse(Session, 'the signed-in operator'), ...errorResponses },
    }),
    (c) => {
      const actor = operator(c, 'viewer');
      return c.json({ tokenId: actor.tokenId, name: actor.name, role: actor.role }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/machines/{machineId}/history', tags: ['console'], security: bearer,
      summary: "a machine's lag, backlog and changes over the last hour and day, and its recent recovery points",
      request: { params: pathParams('vaultId', 'machineId') },
      responses: { 200: jsonResponse(MachineHistory.omit({ lastSeq: true }), 'the history'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, machineId } = c.req.valid('param');
      await getItem(ctx, vaultId, 'machines', 'machine', machineId, Machine);
      const { lastSeq: _seen, ...history } = await readHistory(ctx, vaultId, machineId);
      return c.json(history, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/history', tags: ['console'], security: bearer,
      summary: 'the history of every protected machine (without recovery points)',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(MachineHistory.omit({ lastSeq: true, points: true })), 'one history per machine'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      const machines = (await listItems(ctx, vaultId, 'machines', Machine)).filter((m) => m.protection);
      const items = [];
      for (const m of machines) {
        const { lastSeq: _seen, points: _points, ...h } = await readHistory(ctx, vaultId, m.id);
        items.push(h);
      }
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put', path: '/vaults/{vaultId}/plans/{planId}', tags: ['plans'], security: bearer,
      summary: "replace a recovery plan's name, groups and boot check (not while one of its jobs runs)",
      request: { params: pathParams('vaultId', 'planId'), body: jsonBody(PlanUpdate) },
      responses: {
        200: jsonResponse(Plan, 'the plan'), ...errorResponses,
        409: { description: 'a job of the plan is running', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const actor = operator(c, 'operator');
      const { vaultId, planId } = c.req.valid('param');
      const input = c.req.valid('json');
      await getItem(ctx, vaultId, 'plans', 'plan', planId, Plan);
      const seen = new Set<string>();
      for (const [g, group] of input.groups.entries()) {
        for (const [i, machineId] of group.machineIds.entries()) {
          const field = `groups.${g}.machineIds.${i}`;
          if (seen.has(machineId)) throw new InvalidRequestError(`machine ${machineId} is in the plan twice`, { field });
          seen.add(machineId);
          if (!(await ctx.repo.get(keys.item(vaultId, 'machines', machineId), Machine))) {
            throw new InvalidRequestError(`no machine ${machineId} in vault ${vaultId}`, { field });
          }
        }
      }
      const running = (await listItems(ctx, vaultId, 'jobs', Job)).find((j) => j.planId === planId && j.state === 'running');
      if (running) throw new ConflictError(`job ${running.id} of this plan is running`, { hint: 'edit the plan when it has ended' });
      const r = await ctx.repo.update(keys.item(vaultId, 'plans', planId), Plan, (p) => ({ ...p, ...input }));
      if (!r) throw new NotFoundError(`no plan ${planId} in vault ${vaultId}`);
      await recordAudit(ctx, actor, 'plan.update', { vaultId, targetId: planId, detail: { name: input.name, machines: seen.size } });
      return c.json(r.after, 200);
    },
  );
}
