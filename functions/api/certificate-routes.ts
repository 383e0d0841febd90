/** The vault's certificate authority as operators see it (docs/security.md). */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from '../deps.ts';
import { issueOperatorCertificate, vaultCaCertificate } from '../domain/operator-certificates.ts';
import { CertificateRecord, listCertificates } from '../domain/certificate-records.ts';
import { revokeCertificate, revokedCertificates, RevokedCertificate } from '../domain/certificate-revocation.ts';
import { getVault } from '../domain/lookup.ts';
import { operator, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse, listOf, pathParams } from './route-helpers.ts';

const IssuedCertificate = z.object({
  id: z.string(),
  certificate: z.string().describe('PEM, signed by the vault CA'),
  caCertificate: z.string().describe('PEM of the vault CA'),
  notAfter: z.string(),
  serial: z.string().describe('lowercase hex: what revoking it takes'),
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

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/certificates', tags: ['enrollment'], security: bearer,
      summary: 'certificates the vault CA issued, revoked ones included',
      request: {
        params: pathParams('vaultId'),
        query: z.object({ subjectId: z.string().max(64).optional().describe('only those of this machine, server or operator certificate id') }),
      },
      responses: { 200: jsonResponse(listOf(CertificateRecord), 'the certificates, by serial'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await listCertificates(ctx, vaultId, c.req.valid('query')) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/vaults/{vaultId}/certificates/{serial}/revoke', tags: ['enrollment'], security: bearer,
      summary: 'revoke a certificate (admin); servers refuse it once their list is refreshed',
      request: {
        params: pathParams('vaultId', 'serial'),
        body: {
          required: false,
          content: {
            'application/json': {
              schema: z.object({
                reason: z.string().max(200).optional(),
                revokeCredentials: z.boolean().optional().describe("also revoke the site credentials of the agent or server it names (it must then enroll again)"),
              }),
            },
          },
        },
      },
      responses: { 200: jsonResponse(CertificateRecord, 'the certificate, revoked (again: unchanged)'), ...errorResponses },
    }),
    async (c) => {
      const actor = operator(c, 'admin');
      const { vaultId, serial } = c.req.valid('param');
      const body = (c.req.header('content-type')?.includes('json') ? c.req.valid('json') : undefined) ?? {};
      return c.json(await revokeCertificate(ctx, actor, vaultId, serial, body), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/vaults/{vaultId}/revocations', tags: ['enrollment'], security: bearer,
      summary: "the vault's revoked certificates that have not expired",
      request: { params: pathParams('vaultId') },
      responses: { 200: jsonResponse(listOf(RevokedCertificate), 'revoked certificates'), ...errorResponses },
    }),
    async (c) => {
      operator(c, 'viewer');
      const { vaultId } = c.req.valid('param');
      await getVault(ctx, vaultId);
      return c.json({ items: await revokedCertificates(ctx, vaultId) }, 200);
    },
  );
}
