/** Vaults, operator tokens, registration keys and the audit log. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { listAudit } from '../domain/audit.ts';
import { getVault } from '../domain/lookup.ts';
import { createOperatorToken, listOperatorTokens } from '../domain/operator-tokens.ts';
import { AuditEntry, Role, Vault, idOf } from '../domain/records.ts';
import { createRegistrationKey, listRegistrationKeys, MAX_REGISTRATION_KEY_TTL_SECONDS, revokeRegistrationKey } from '../domain/registration-keys.ts';
import { createVault, listVaults } from '../domain/vaults.ts';
import { operator, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

const OperatorTokenView = z.object({ id: idOf('operatorToken'), name: z.string(), role: Role, createdAt: z.string() }).openapi('OperatorToken');
const RegistrationKeyView = z.object({
  id: idOf('registrationKey'), vaultId: idOf('vault'), createdAt: z.string(), expiresAt: z.string(), revoked: z.boolean(),
  maxUses: z.number().int().nullable().optional(), uses: z.number().int().optional(),
}).openapi('RegistrationKey');
const AuditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

export function registerVaultRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/vaults', tags: ['vaults'], security: bearer, summary: 'create a vault (admin)',
      request: { body: jsonBody(z.object({ name: z.string().min(1).max(128) })) },
      responses: { 201: jsonResponse(Vault, 'the vault'), ...errorResponses },
    }),
    async (c) => c.json(await createVault(ctx, operator(c, 'admin'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults', tags: ['vaults'], security: bearer, summary: 'list vaults',
      responses: { 200: jsonResponse(listOf(Vault), 'every vault'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      return c.json({ items: await listVaults(ctx) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}', tags: ['vaults'], security: bearer, summary: 'one vault',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(Vault, 'the vault'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      return c.json(await getVault(ctx, c.req.valid('param').vaultId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/operator-tokens', tags: ['operators'], security: bearer, summary: 'create an operator token (admin)',
      request: { body: jsonBody(z.object({ name: z.string().min(1).max(128), role: Role })) },
      responses: { 201: jsonResponse(OperatorTokenView.extend({ token: z.string().describe('shown once') }), 'the token'), ...errorResponses },
    }),
    async (c) => c.json(await createOperatorToken(ctx, operator(c, 'admin'), c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/operator-tokens', tags: ['operators'], security: bearer, summary: 'list operator tokens (admin)',
      responses: { 200: jsonResponse(listOf(OperatorTokenView), 'tokens, without secrets'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'admin');
      return c.json({ items: await listOperatorTokens(ctx) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/registration-keys', tags: ['enrollment'], security: bearer,
      summary: 'create a registration key (admin)',
      request: {
        params: pathParams('vaultId'),
        body: jsonBody(z.object({
          ttlSeconds: z.number().int().min(60).max(MAX_REGISTRATION_KEY_TTL_SECONDS).optional(),
          maxUses: z.number().int().min(1).max(100_000).optional().describe('enrollments allowed (default: any number until it expires)'),
        })),
      },
      responses: { 201: jsonResponse(RegistrationKeyView.extend({ key: z.string().describe('shown once') }), 'the key'), ...errorResponses },
    }),
    async (c) => c.json(await createRegistrationKey(ctx, operator(c, 'admin'), c.req.valid('param').vaultId, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/registration-keys', tags: ['enrollment'], security: bearer, summary: 'list registration keys (admin)',
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(RegistrationKeyView), 'keys, without secrets'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'admin');
      return c.json({ items: await listRegistrationKeys(ctx, c.req.valid('param').vaultId) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: '/vaults/{vaultId}/registration-keys/{keyId}', tags: ['enrollment'], security: bearer,
      summary: 'revoke a registration key (admin)',
      request: { params: pathParams('vaultId', 'keyId') },
      responses: { 200: jsonResponse(RegistrationKeyView, 'the revoked key'), ...errorResponses },
    }),
    async (c) => {
      const { vaultId, keyId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json(await revokeRegistrationKey(ctx, operator(c, 'admin'), vaultId, keyId), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/audit', tags: ['audit'], security: bearer, summary: "a vault's audit log, newest first",
      request: { params: pathParams('vaultId'), query: AuditQuery },
      responses: { 200: jsonResponse(listOf(AuditEntry), 'entries'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listAudit(ctx, vaultId, c.req.valid('query').limit) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/audit', tags: ['audit'], security: bearer, summary: 'actions outside any vault (tokens), newest first (admin)',
      request: { query: AuditQuery },
      responses: { 200: jsonResponse(listOf(AuditEntry), 'entries'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'admin');
      return c.json({ items: await listAudit(ctx, null, c.req.valid('query').limit) }, 200);
    },
  );
}
