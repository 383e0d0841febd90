/**
 * `POST /v1/push-installs` starts a push install and answers 202 with its job;
 * `GET /v1/push-installs/{id}` tells its steps, log and result (docs/agent-install.md).
 * Operators only: an agent's credential gets 403.
 */
import { Hono } from 'hono';
import { PushInstallRequest } from './request.ts';
import { PushInstallUnavailableError, type PushInstaller } from './push-installer.ts';

type Env = { Variables: { agentMachine?: string } };

export function pushInstallRoutes(installer: PushInstaller): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/v1/push-installs/*', async (c, next) => {
    if (c.get('agentMachine') !== undefined) return c.json({ error: 'agents may not push installs' }, 403);
    return next();
  });
  app.use('/v1/push-installs', async (c, next) => {
    if (c.get('agentMachine') !== undefined) return c.json({ error: 'agents may not push installs' }, 403);
    return next();
  });

  app.post('/v1/push-installs', async (c) => {
    const parsed = PushInstallRequest.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return c.json({ error: `invalid push install: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'not JSON'}`, field: issue?.path.join('.') }, 400);
    }
    try {
      return c.json(await installer.start(parsed.data), 202);
    } catch (err) {
      if (err instanceof PushInstallUnavailableError) return c.json({ error: err.message, hint: err.hint }, 503);
      throw err;
    }
  });

  app.get('/v1/push-installs/:id', (c) => {
    const job = installer.get(c.req.param('id'));
    if (!job) return c.json({ error: 'no such push install', hint: 'the process server keeps the last 100 in memory' }, 404);
    return c.json(job);
  });
  return app;
}
