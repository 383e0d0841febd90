/**
 * Certificates as sites see them (docs/control-plane-api.md): every enrolled component
 * fetches its vault's revocation list and renews its own certificate before it expires.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { REVOCATION_LIST_VERSION } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { renewCertificate } from '../domain/certificate-renewal.ts';
import { revokedCertificates, RevokedCertificate } from '../domain/certificate-revocation.ts';
import { site, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse } from './route-helpers.ts';

const RenewedCertificate = z.object({
  certificate: z.string().describe('PEM, same identity and names, new key'),
  caCertificate: z.string(),
  notAfter: z.string(),
  serial: z.string(),
}).openapi('RenewedCertificate');

export function registerSiteCertificateRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'get', path: '/site/revocations', tags: ['site'], security: bearer,
      summary: "the vault's revoked certificates (servers refuse such clients, every component such servers)",
      responses: {
        200: jsonResponse(z.object({ v: z.literal(REVOCATION_LIST_VERSION), vaultId: z.string(), revoked: z.array(RevokedCertificate) }).openapi('RevocationList'), 'the list'),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { vaultId } = site(c);
      return c.json({ v: REVOCATION_LIST_VERSION, vaultId, revoked: await revokedCertificates(ctx, vaultId) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/site/certificate/renew', tags: ['site'], security: bearer,
      summary: "a new certificate of the caller's identity, for a new key",
      request: {
        body: jsonBody(z.object({
          certificate: z.string().min(1).max(8192).describe('PEM of the current certificate: this vault\'s, valid, unrevoked, naming the caller'),
          csr: z.string().min(1).max(8192).describe('PKCS#10 request (PEM) of the new ECDSA P-256 key'),
          signature: z.string().min(1).max(512).describe("base64 ECDSA-SHA256 signature (DER) of the csr text by the current certificate's key"),
        })),
      },
      responses: { 201: jsonResponse(RenewedCertificate, 'the new certificate'), ...errorResponses },
    }),
    async (c) => c.json(await renewCertificate(ctx, site(c), c.req.valid('json')), 201),
  );
}
