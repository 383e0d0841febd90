/** Sites, servers, machines (with disks), protection and alerts. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { getItem, getVault, listItems } from '../domain/lookup.ts';
import { disableProtection, enableProtection } from '../domain/protection.ts';
import { Alert, AlertKind, Machine, Server, Site, idOf } from '../domain/records.ts';
import { operator, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

export function registerFleetRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/sites', tags: ['fleet'], security: bearer, summary: 'sites of a vault',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Site), 'sites'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'sites', Site) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/servers', tags: ['fleet'], security: bearer, summary: 'process servers and master targets',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Server), 'servers'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'servers', Server) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/servers/{serverId}', tags: ['fleet'], security: bearer, summary: 'one server',
      request: { params: pathParams('vaultId', 'serverId') },
      responses: { 200: jsonResponse(Server, 'the server'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, serverId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'servers', 'server', serverId, Server), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/machines', tags: ['fleet'], security: bearer, summary: 'machines and their disks',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Machine), 'machines'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'machines', Machine) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/machines/{machineId}', tags: ['fleet'], security: bearer, summary: 'one machine',
      request: { params: pathParams('vaultId', 'machineId') },
      responses: { 200: jsonResponse(Machine, 'the machine'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, machineId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'machines', 'machine', machineId, Machine), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put', path: '/vaults/{vaultId}/machines/{machineId}/protection', tags: ['protection'], security: bearer,
      summary: 'enable protection: assign a process server and master target and push the policy to them',
      request: {
        params: pathParams('vaultId', 'machineId'),
        body: jsonBody(z.object({
          policyId: idOf('policy'),
          processServerId: idOf('server').optional().describe('default: the least loaded'),
          masterTargetId: idOf('server').optional().describe('default: the least loaded'),
        })),
      },
      responses: { 200: jsonResponse(Machine, 'the machine, protected'), ...errorResponses },
    }),
    async (c) => {
      const actor = operator(c, 'operator');
      const { vaultId, machineId } = c.req.valid('param');
      return c.json(await enableProtection(ctx, actor, vaultId, machineId, c.req.valid('json')), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/vaults/{vaultId}/machines/{machineId}/protection', tags: ['protection'], security: bearer,
      summary: 'disable protection',
      request: { params: pathParams('vaultId', 'machineId') },
      responses: { 200: jsonResponse(Machine, 'the machine, unprotected'), ...errorResponses },
    }),
    async (c) => {
      const actor = operator(c, 'operator');
      const { vaultId, machineId } = c.req.valid('param');
      return c.json(await disableProtection(ctx, actor, vaultId, machineId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/alerts', tags: ['health'], security: bearer, summary: 'alerts, computed from site reports',
      request: {
        params: pathParams('vaultId'),
        query: z.object({ state: z.enum(['active', 'cleared', 'all']).default('active'), kind: AlertKind.optional() }),
      },
      responses: { 200: jsonResponse(listOf(Alert), 'alerts'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      const { state, kind } = c.req.valid('query');
      await getVault(ctx, vaultId);
      const all = await listItems(ctx, vaultId, 'alerts', Alert);
      return c.json({ items: all.filter((a) => (state === 'all' || a.state === state) && (!kind || a.kind === kind)) }, 200);
    },
  );
}
