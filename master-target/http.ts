/**
 * The master target's HTTP API (docs/wire-format.md, "HTTP protocol"): ingest of batches,
 * machines, recovery points and point-in-time images.
 */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { FrameError, TidemarkError, UsageError } from '../core/errors.ts';
import { bearerAuth } from '../core/http/auth.ts';
import { BodyTooLargeError, readBody } from '../core/http/body.ts';
import type { Logger } from '../core/log.ts';
import { isValidName } from '../core/names.ts';
import { MAX_FRAME_BYTES } from '../core/wire/frame.ts';
import { prepareBatch } from './batch.ts';
import { NoSpaceError, PointOutOfRangeError, StreamUnavailableError, type DiskStream } from './disk-stream.ts';
import { imageStream, sendImage } from './export.ts';
import type { Retainer } from './retention.ts';
import type { StreamStore } from './store.ts';

/** Largest request body accepted: one frame plus slack. */
export const MAX_BODY_BYTES = MAX_FRAME_BYTES + 1024 * 1024;
/** Points listed when the request sets no limit. */
export const DEFAULT_POINTS_LIMIT = 100_000;

export interface AppDeps {
  store: StreamStore;
  retainer: Retainer;
  token?: string;
  log: Logger;
}

class NotFound extends TidemarkError {}

export function createApp(deps: AppDeps): Hono {
  const { store, log } = deps;
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof FrameError) return c.json({ error: err.message, reason: err.reason, hint: err.hint }, 400);
    if (err instanceof BodyTooLargeError) return c.json({ error: err.message, hint: `send frames of at most ${MAX_FRAME_BYTES} bytes` }, 413);
    if (err instanceof NoSpaceError) return c.json({ error: err.message, hint: err.hint }, 507);
    if (err instanceof StreamUnavailableError) return c.json({ error: err.message, hint: err.hint }, 503);
    if (err instanceof NotFound || err instanceof PointOutOfRangeError) return c.json({ error: err.message, hint: err.hint }, 404);
    if (err instanceof UsageError) return c.json({ error: err.message, hint: err.hint }, 400);
    log.error('request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: `internal error: ${err.message}`, hint: 'see the master target log' }, 500);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.use('*', bearerAuth(deps.token, log));

  app.get('/v1/streams/:machine/:disk', (c) => {
    const { machine, disk } = names(c);
    return c.json({ machine, disk, nextSeq: store.get(machine, disk)?.nextSeq ?? 1 });
  });

  app.post('/v1/streams/:machine/:disk/batches', async (c) => {
    const { machine, disk } = names(c);
    const batch = prepareBatch(await readBody(c, MAX_BODY_BYTES));
    const h = batch.header;
    if (h.machine !== machine || h.disk !== disk) {
      throw new FrameError('malformed', `frame is for ${h.machine}/${h.disk}, posted to ${machine}/${disk}`);
    }
    const existing = store.get(machine, disk);
    if (!existing && h.firstSeq !== 1) return gap(c, h.firstSeq, 1);
    const stream = existing ?? (await store.getOrCreate(machine, disk));
    const r = await stream.apply(batch);
    if (r.status === 'gap') return gap(c, h.firstSeq, r.nextSeq);
    if (r.status === 'duplicate') return c.json({ nextSeq: r.nextSeq, duplicate: true });
    log.debug('batch applied', { machine, disk, firstSeq: h.firstSeq, lastSeq: h.lastSeq, frameBytes: h.totalBytes });
    return c.json({ nextSeq: r.nextSeq });
  });

  app.get('/v1/machines', (c) => {
    const byMachine = new Map<string, Array<{ disk: string; diskBytes: number; appliedSeq: number }>>();
    for (const s of store.list()) {
      const disks = byMachine.get(s.machine) ?? [];
      disks.push({ disk: s.disk, diskBytes: s.diskBytes, appliedSeq: s.nextSeq - 1 });
      byMachine.set(s.machine, disks);
    }
    return c.json({ machines: [...byMachine].map(([machine, disks]) => ({ machine, disks })) });
  });

  app.get('/v1/machines/:machine/disks/:disk/points', (c) => {
    const stream = streamOf(c);
    const sinceSeq = intParam(c, 'since') ?? 0;
    const limit = intParam(c, 'limit') ?? DEFAULT_POINTS_LIMIT;
    const listed = stream.points.list({ sinceSeq: Math.max(sinceSeq, stream.oldestSeq - 1), limit: limit + 1, notBeforeMs: deps.retainer.cutoffMs() });
    const points = listed.filter((p) => p.seq <= stream.nextSeq - 1).slice(0, limit);
    return c.json(listed.length > limit ? { points, truncated: true } : { points });
  });

  app.get('/v1/machines/:machine/disks/:disk/image', async (c) => {
    const stream = streamOf(c);
    const seq = resolvePoint(stream, c.req.query('at') ?? 'latest');
    const reader = stream.openReader(seq);
    log.info('export started', { machine: stream.machine, disk: stream.disk, seq, sizeBytes: reader.sizeBytes });
    const headers = {
      'content-type': 'application/octet-stream',
      'content-length': String(reader.sizeBytes),
      'x-tidemark-point': String(seq),
    };
    // On Node's server, write to its response directly: web streams cost most of the throughput.
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (outgoing && typeof outgoing.writeHead === 'function') {
      outgoing.writeHead(200, headers);
      sendImage(reader, outgoing).catch((err: unknown) => {
        if (!outgoing.destroyed || !isClientGone(err)) log.warn('export ended early', { machine: stream.machine, disk: stream.disk, seq, error: err });
      });
      return RESPONSE_ALREADY_SENT;
    }
    return new Response(imageStream(reader), { status: 200, headers });
  });

  function streamOf(c: Context): DiskStream {
    const { machine, disk } = names(c);
    const stream = store.get(machine, disk);
    if (!stream) {
      throw new NotFound(`no disk ${machine}/${disk} at this master target`, { hint: 'GET /v1/machines lists the disks it holds' });
    }
    return stream;
  }

  return app;
}

function names(c: Context): { machine: string; disk: string } {
  const machine = c.req.param('machine') ?? '';
  const disk = c.req.param('disk') ?? '';
  for (const [what, v] of [['machine', machine], ['disk', disk]] as const) {
    if (!isValidName(v)) {
      throw new UsageError(`invalid ${what} name ${JSON.stringify(v)}`, { hint: 'use 1-64 letters, digits, dot, dash or underscore, starting with a letter or digit' });
    }
  }
  return { machine, disk };
}

function intParam(c: Context, name: string): number | undefined {
  const v = c.req.query(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new UsageError(`query parameter ${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

function isClientGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

function gap(c: Context, firstSeq: number, nextSeq: number): Response {
  return c.json({ error: `batch starts at seq ${firstSeq} but this stream expects ${nextSeq}`, nextSeq, hint: `resume sending from seq ${nextSeq}` }, 409);
}

/** The seq of `at`: `latest`, a point id, or an ISO time (the newest point at or before it). */
function resolvePoint(stream: DiskStream, at: string): number {
  const appliedSeq = stream.nextSeq - 1;
  const where = `${stream.machine}/${stream.disk}`;
  const hint = `list valid points with GET /v1/machines/${stream.machine}/disks/${stream.disk}/points (or tidemark points), or use at=latest`;
  if (at === 'latest') {
    if (appliedSeq < 1) throw new NotFound(`disk ${where} has no data yet`, { hint: 'wait for the first batch to arrive' });
    return appliedSeq;
  }
  if (/^\d{1,15}$/.test(at)) {
    const seq = Number(at);
    if (seq < stream.oldestSeq || seq > appliedSeq || !stream.points.pointAt(seq)) {
      throw new NotFound(`no recovery point ${at} for disk ${where}`, { hint });
    }
    return seq;
  }
  const timeMs = Date.parse(at);
  if (!Number.isFinite(timeMs)) throw new UsageError(`at must be latest, a point id or an ISO 8601 time, got ${JSON.stringify(at)}`, { hint });
  const p = stream.points.newestAtOrBefore(timeMs);
  if (!p || p.seq < stream.oldestSeq || p.seq > appliedSeq) {
    throw new NotFound(`no recovery point at or before ${new Date(timeMs).toISOString()} for disk ${where}`, { hint });
  }
  return p.seq;
}
