/** The vault's certificate authority as operators see it (docs/security.md). */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { issueOperatorCertificate, vaultCaCertificate } from '../domain/operator-certificates.ts';
import { operator, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, pathParams } from './route-helpers.ts';

const IssuedCertificate = z.object({
  id: z.string(),
  certificate: z.string().describe('PEM, signed by the vault CA'),
  caCertificate: z.string().describe('PEM of the vault CA'),
  notAfter: z.string(),
}).openapi('IssuedCertificate');

export function registerCertificateRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/ca', tags: ['enrollment'], security: bearer, summary: "the vault CA's certificate",
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(z.object({ certificate: z.string() }), 'PEM'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      return c.json({ certificate: await vaultCaCertificate(ctx, c.req.valid('param').vaultId) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/operator-certificates', tags: ['enrollment'], security: bearer,
      summary: 'issue an operator certificate for the CLI (admin)',
      request: {
        params: pathParams('vaultId'),
        body: jsonBody(z.object({
          name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, dot, dash or underscore'),
          csr: z.string().min(1).max(8192).describe('PKCS#10 request (PEM) of an ECDSA P-256 key'),
        })),
      },
      responses: { 201: jsonResponse(IssuedCertificate, 'the certificate'), ...errorResponses },
    }),
    async (c) => c.json(await issueOperatorCertificate(ctx, operator(c, 'admin'), c.req.valid('param').vaultId, c.req.valid('json')), 201),
  );
}
