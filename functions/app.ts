/**
 * The control plane's HTTP API: one Hono app that runs in Lambda (`lambda/api.ts`), in Node
 * (`local.ts`) and in tests (`app.request`). Everything is under `/api/v1`; the OpenAPI
 * document is `/api/v1/openapi.json`.
 *
 * @example
 *   const app = createApp(deps);
 *   const res = await app.request('/api/v1/vaults', { headers: { authorization: `Bearer ${token}` } });
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { registerCertificateRoutes } from './api/certificate-routes.ts';
import { registerConsoleRoutes } from './api/console-routes.ts';
import { registerFleetRoutes } from './api/fleet-routes.ts';
import { registerJobRoutes } from './api/job-routes.ts';
import { registerMetricsRoutes } from './api/metrics-routes.ts';
import { registerPlanRoutes } from './api/plan-routes.ts';
import { registerPointRoutes } from './api/point-routes.ts';
import { registerSiteRoutes } from './api/site-routes.ts';
import { registerSiteCertificateRoutes } from './api/site-certificate-routes.ts';
import { registerVaultRoutes } from './api/vault-routes.ts';
import { errorHandler, validationHook } from './api/error-handler.ts';
import type { AppEnv } from './api/env.ts';
import { mountConsole } from './console/console-routes.ts';
import { contextOf, type ControlPlaneDeps } from './deps.ts';
import { authenticate } from './domain/authenticate.ts';

export const API_BASE_PATH = '/api/v1';
/** Largest request body accepted, in bytes. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

export function createApp(deps: ControlPlaneDeps): OpenAPIHono<AppEnv> {
  const ctx = contextOf(deps);
  const onError = errorHandler(deps.log);
  const api = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  api.onError(onError);

  api.use(bodyLimit({
    maxSize: MAX_REQUEST_BODY_BYTES,
    onError: (c) => c.json({ error: `request body over ${MAX_REQUEST_BODY_BYTES} bytes` }, 413),
  }));
  // A credential, when sent, must be valid; whether the route needs one is up to the route.
  api.use(async (c, next) => {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) c.set('principal', await authenticate(ctx, authorization));
    await next();
  });

  api.get('/health', (c) => c.json({ ok: true }));
  registerMetricsRoutes(api, ctx);
  registerVaultRoutes(api, ctx);
  registerCertificateRoutes(api, ctx);
  registerFleetRoutes(api, ctx);
  registerPlanRoutes(api, ctx);
  registerJobRoutes(api, ctx);
  registerPointRoutes(api, ctx);
  registerConsoleRoutes(api, ctx); // before the site routes: it records heartbeats for the console's history
  registerSiteRoutes(api, ctx);
  registerSiteCertificateRoutes(api, ctx);

  api.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  api.doc('/openapi.json', {
    openapi: '3.0.3',
    info: { title: 'Tidemark control plane', version: '1', description: 'Vaults, enrollment, fleet, policies, plans, jobs and drills.' },
    servers: [{ url: API_BASE_PATH }],
  });

  const app = new OpenAPIHono<AppEnv>();
  app.onError(onError);
  app.route(API_BASE_PATH, api);
  mountConsole(app);
  app.notFound((c) => c.json({ error: `no endpoint ${c.req.method} ${c.req.path}` }, 404));
  return app;
}
