/** The process server's HTTP API (docs/wire-format.md, "Ingest" and "Process server only"). */
import { Hono } from 'hono';
import { z } from 'zod';
import { verifyFrame, MAX_FRAME_BYTES } from '../core/wire/frame.ts';
import { FrameError } from '../core/errors.ts';
import { bearerAuth } from '../core/http/auth.ts';
import { readBody, BodyTooLargeError } from '../core/http/body.ts';
import { isValidName } from '../core/names.ts';
import { PeerUnreachableError } from '../core/http/client.ts';
import type { Logger } from '../core/log.ts';
import type { Streams } from './streams.ts';
import { diskStatus } from './status.ts';

export interface ProcessServerAppOptions {
  streams: Streams;
  token?: string;
  maxSpoolBytes: number;
  log: Logger;
}

const Heartbeat = z.object({
  disks: z.array(z.object({
    disk: z.string().refine(isValidName, 'invalid disk name'),
    phase: z.enum(['INITIAL_SYNC', 'CONTINUOUS', 'RESYNC']),
    doneBytes: z.number().int().nonnegative().optional(),
    totalBytes: z.number().int().nonnegative().optional(),
    intervalSeconds: z.number().nonnegative().optional(),
  })).max(256),
});

export function processServerApp(o: ProcessServerAppOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.use('*', bearerAuth(o.token, o.log));

  app.use('/v1/streams/:machine/:disk/*', async (c, next) => {
    if (!isValidName(c.req.param('machine')) || !isValidName(c.req.param('disk'))) return c.json({ error: 'invalid machine or disk name' }, 400);
    return next();
  });

  app.get('/v1/streams/:machine/:disk', async (c) => {
    const { machine, disk } = c.req.param();
    if (!isValidName(machine) || !isValidName(disk)) return c.json({ error: 'invalid machine or disk name' }, 400);
    const s = await o.streams.get(machine, disk);
    s.lastContactMs = Date.now();
    return c.json({ machine, disk, nextSeq: await s.acceptNextSeq() });
  });

  app.post('/v1/streams/:machine/:disk/batches', async (c) => {
    const { machine, disk } = c.req.param();
    const body = await readBody(c, MAX_FRAME_BYTES);
    const header = verifyFrame(body);
    if (header.machine !== machine || header.disk !== disk) {
      return c.json({ error: `frame is for ${header.machine}/${header.disk}, not ${machine}/${disk}`, reason: 'malformed' }, 400);
    }
    const s = await o.streams.get(machine, disk);
    const r = await s.accept(body, header, o.maxSpoolBytes);
    if (r.status === 507) {
      o.log.warn('batch refused: no room', { machine, disk, error: r.error });
      return c.json({ error: r.error, hint: 'the master target is not keeping up or is unreachable; the agent retries' }, 507);
    }
    return c.json(r, r.status);
  });

  app.post('/v1/agents/:machine/heartbeat', async (c) => {
    const machine = c.req.param('machine');
    if (!isValidName(machine)) return c.json({ error: 'invalid machine name' }, 400);
    const parsed = Heartbeat.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return c.json({ error: `invalid heartbeat: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'not JSON'}` }, 400);
    }
    for (const d of parsed.data.disks) {
      const s = await o.streams.get(machine, d.disk);
      s.agent = { phase: d.phase, doneBytes: d.doneBytes, totalBytes: d.totalBytes, intervalSeconds: d.intervalSeconds };
      s.lastContactMs = Date.now();
    }
    return c.json({});
  });

  app.get('/v1/status', (c) => {
    const now = Date.now();
    return c.json({ disks: o.streams.all().map((s) => diskStatus(s, now)) });
  });

  app.onError((err, c) => {
    if (err instanceof FrameError) return c.json({ error: err.message, reason: err.reason, hint: err.hint }, 400);
    if (err instanceof BodyTooLargeError) return c.json({ error: err.message }, 413);
    if (err instanceof PeerUnreachableError) return c.json({ error: `master target unreachable: ${err.message}`, hint: 'retry; the process server needs the master target to learn where a new stream stands' }, 503);
    o.log.error('request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: `internal error: ${err.message}` }, 500);
  });
  return app;
}
