/**
 * A control plane on the embedded backends in a temporary directory, with a settable clock,
 * an admin token and small helpers for `app.request`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../../functions/app.ts';
import { contextOf, type Context } from '../../../functions/deps.ts';
import { openEmbeddedDeps } from '../../../functions/embedded-deps.ts';
import { createOperatorToken } from '../../../functions/domain/operator-tokens.ts';

export interface TestControlPlane {
  readonly app: ReturnType<typeof createApp>;
  readonly ctx: Context;
  readonly adminToken: string;
  readonly clock: { ms: number };
  /** Where the embedded store lives. */
  readonly dataDir: string;
  /** JSON request; returns status and parsed body. */
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startTestControlPlane(): Promise<TestControlPlane> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tidemark-cp-'));
  const clock = { ms: Date.parse('2030-01-01T00:00:00Z') };
  const deps = await openEmbeddedDeps({ dataDir, now: () => clock.ms });
  const ctx = contextOf(deps);
  const app = createApp(deps);
  const { token: adminToken } = await createOperatorToken(ctx, null, { name: 'test admin', role: 'admin' });
  return {
    app, ctx, adminToken, clock, dataDir,
    async call(method, path, body, token = adminToken) {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await app.request(path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    close: () => rm(dataDir, { recursive: true, force: true }),
  };
}
