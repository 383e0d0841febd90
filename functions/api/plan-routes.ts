/** Replication policies and recovery plans. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { getItem, getVault, listItems } from '../domain/lookup.ts';
import { createPlan } from '../domain/plans.ts';
import { createPolicy } from '../domain/policies.ts';
import { Plan, PlanGroup, Policy } from '../domain/records.ts';
import { operator, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

const PolicyInput = z.object({
  name: z.string().min(1).max(128),
  rpoThresholdSeconds: z.number().int().min(1).max(86400),
  retentionSeconds: z.number().int().min(60).max(90 * 86400),
  appConsistentIntervalSeconds: z.number().int().min(60).nullable().default(null),
  bandwidthLimitBytesPerSecond: z.number().int().min(1).nullable().default(null),
});

/** A recovery plan as an operator writes it (created, or replaced whole). */
export const PlanInput = z.object({
  name: z.string().min(1).max(128),
  groups: z.array(PlanGroup.extend({
    preActions: PlanGroup.shape.preActions.default([]),
    postActions: PlanGroup.shape.postActions.default([]),
  })).min(1).max(20),
  bootCheck: z.boolean().default(false),
  bootConsolePattern: z.string().min(1).max(200).regex(/^[^\n\r]*$/, 'must be one line').nullable().default(null)
    .describe("text the replica's serial console must print to count as booted (literal)"),
});

export function registerPlanRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/policies', tags: ['policies'], security: bearer, summary: 'create a replication policy',
      request: { params: pathParams('vaultId'), body: jsonBody(PolicyInput) },
      responses: { 201: jsonResponse(Policy, 'the policy'), ...errorResponses },
    }),
    async (c) => c.json(await createPolicy(ctx, operator(c, 'operator'), c.req.valid('param').vaultId, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/policies', tags: ['policies'], security: bearer, summary: 'replication policies',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Policy), 'policies'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'policies', Policy) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/policies/{policyId}', tags: ['policies'], security: bearer, summary: 'one policy',
      request: { params: pathParams('vaultId', 'policyId') },
      responses: { 200: jsonResponse(Policy, 'the policy'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, policyId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'policies', 'policy', policyId, Policy), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/plans', tags: ['plans'], security: bearer, summary: 'create a recovery plan',
      request: { params: pathParams('vaultId'), body: jsonBody(PlanInput) },
      responses: { 201: jsonResponse(Plan, 'the plan'), ...errorResponses },
    }),
    async (c) => c.json(await createPlan(ctx, operator(c, 'operator'), c.req.valid('param').vaultId, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/plans', tags: ['plans'], security: bearer, summary: 'recovery plans',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(Plan), 'plans'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listItems(ctx, vaultId, 'plans', Plan) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/plans/{planId}', tags: ['plans'], security: bearer, summary: 'one plan',
      request: { params: pathParams('vaultId', 'planId') },
      responses: { 200: jsonResponse(Plan, 'the plan'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId, planId } = c.req.valid('param');
      return c.json(await getItem(ctx, vaultId, 'plans', 'plan', planId, Plan), 200);
    },
  );
}
