/** Jobs (test failover, failover, cleanup), drills and drill reports. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { createDrill } from '../domain/drills.ts';
import { startJob } from '../domain/jobs.ts';
import { getItem, getVault, listItems } from '../domain/lookup.ts';
import { Drill, DrillReport, Job, JobKind, idOf } from '../domain/records.ts';
import { operator, type AppEnv } from './env.ts';
import { PointChoice } from '../../core/control-plane/protocol.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

export function registerJobRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/jobs', tags: ['jobs'], security: bearer,
      summary: 'start a test failover, failover, cleanup or bookmark of a plan',
      request: {
        params: pathParams('vaultId'),
        body: jsonBody(z.object({
          kind: JobKind,
          planId: idOf('plan'),
          testFailoverJobId: idOf('job').optional().describe('cleanup: the test failover to undo'),
          point: PointChoice.optional().describe("(test) failovers: 'latest' (default), {time: ISO 8601} or {id, diskId} (a plan of one machine)"),
          name: z.string().min(1).max(200).regex(/^[^\n\r]*$/, 'must be one line').optional().describe('bookmark: the name to tag'),
        })),
      },
      responses: { 201: jsonResponse(Job, 'the job, running'), ...errorResponses },
    }),
    async (c) => {
      const actor = operator(c, 'operator');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      const { name, ...body } = c.req.valid('json');
      return c.json(await startJob(ctx, actor, vaultId, { ...body, ...(name !== undefined ? { bookmarkName: name } : {}) }), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/jobs', tags: ['jobs'], security: bearer, summary: 'jobs',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Job), 'jobs'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'jobs', Job) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/jobs/{jobId}', tags: ['jobs'], security: bearer, summary: 'one job, with progress and events',
      request: { params: pathParams('vaultId', 'jobId') },
      responses: { 200: jsonResponse(Job, 'the job'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, jobId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'jobs', 'job', jobId, Job), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/drills', tags: ['drills'], security: bearer, summary: "schedule a plan's drills",
      request: {
        params: pathParams('vaultId'),
        body: jsonBody(z.object({
          planId: idOf('plan'),
          intervalSeconds: z.number().int().min(60).max(366 * 86400),
          firstRunAt: z.iso.datetime().optional(),
          enabled: z.boolean().optional(),
        })),
      },
      responses: { 201: jsonResponse(Drill, 'the drill'), ...errorResponses },
    }),
    async (c) => c.json(await createDrill(ctx, operator(c, 'operator'), c.req.valid('param').vaultId, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/drills', tags: ['drills'], security: bearer, summary: 'drills',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Drill), 'drills'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'drills', Drill) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/drills/{drillId}', tags: ['drills'], security: bearer, summary: 'one drill',
      request: { params: pathParams('vaultId', 'drillId') },
      responses: { 200: jsonResponse(Drill, 'the drill'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, drillId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'drills', 'drill', drillId, Drill), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/drills/{drillId}/reports', tags: ['drills'], security: bearer, summary: "a drill's reports",
      request: { params: pathParams('vaultId', 'drillId') },
      responses: { 200: jsonResponse(listOf(DrillReport), 'reports'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, drillId } = c.req.valid('param');
      await getItem(ctx, vaultId, 'drills', 'drill', drillId, Drill);
      const reports = await listItems(ctx, vaultId, 'drill-reports', DrillReport);
      return c.json({ items: reports.filter((r) => r.drillId === drillId).sort((a, b) => a.startedAt.localeCompare(b.startedAt)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/drill-reports/{reportId}', tags: ['drills'], security: bearer, summary: 'one drill report',
      request: { params: pathParams('vaultId', 'reportId') },
      responses: { 200: jsonResponse(DrillReport, 'the report'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, reportId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'drill-reports', 'drillReport', reportId, DrillReport), 200);
    },
  );
}
