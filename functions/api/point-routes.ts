/**
 * Recovery points as master targets report them: the site endpoint they report to, and the
 * operators' read of one machine's points (the console's timeline).
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { RecoveryPointsReport } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { getItem } from '../domain/lookup.ts';
import { Machine } from '../domain/records.ts';
import { applyPointsReport, MachinePoints, readMachinePoints } from '../domain/recovery-points.ts';
import { ForbiddenError } from '../errors.ts';
import { operator, server, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, pathParams } from './route-helpers.ts';

export function registerPointRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/site/recovery-points', tags: ['site'], security: bearer,
      summary: 'master targets: the recovery points they keep of the machines they protect',
      request: { body: jsonBody(RecoveryPointsReport) },
      responses: { 200: jsonResponse(z.object({ accepted: z.number().int(), ignored: z.number().int() }), 'stored'), ...errorResponses },
    }),
    async (c) => {
      const caller = server(c);
      if (caller.role !== 'master-target') throw new ForbiddenError('only master targets report recovery points');
      return c.json(await applyPointsReport(ctx, caller.vaultId, caller.serverId, c.req.valid('json')), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/machines/{machineId}/recovery-points', tags: ['fleet'], security: bearer,
      summary: "the recovery points the machine's master target keeps, as it last reported them",
      request: { params: pathParams('vaultId', 'machineId') },
      responses: { 200: jsonResponse(MachinePoints, 'the points'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, machineId } = c.req.valid('param');
      await getItem(ctx, vaultId, 'machines', 'machine', machineId, Machine);
      return c.json(await readMachinePoints(ctx, vaultId, machineId), 200);
    },
  );
}
