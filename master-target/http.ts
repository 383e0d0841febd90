/**
 * The master target's HTTP API (docs/wire-format.md, "HTTP protocol"): ingest of batches,
 * machines, recovery points and point-in-time images.
 */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { FrameError, TidemarkError, UsageError } from '../core/errors.ts';
import { bearerAuth } from '../core/http/auth.ts';
import { peerAccess, type MasterTargetPeers } from './peer-access.ts';
import { refuseRevoked } from '../core/tls/revocation-guard.ts';
import type { RevocationList } from '../core/tls/revocation-list.ts';
import { BodyTooLargeError, readBody } from '../core/http/body.ts';
import type { Logger } from '../core/log.ts';
import { isValidName } from '../core/names.ts';
import { MAX_FRAME_BYTES } from '../core/wire/frame.ts';
import { releaseBatch } from './batch.ts';
import { frameBuffers } from './frame-buffers.ts';
import { NoSpaceError, PointOutOfRangeError, StreamUnavailableError, type DiskStream } from './disk-stream.ts';
import { imageStream, sendImage } from './export.ts';
import { parseBlockRange, replicaBlockHashes } from './block-hashes.ts';
import type { Retainer } from './retention.ts';
import { thin, type TierPolicy } from './retention-tiers.ts';
import { pointsSummary } from './points-summary.ts';
import type { StreamStore } from './store.ts';
import { FailoverConflictError, MachineFailedOverError, type FailoverManager } from './views/failover.ts';
import { MaterialiseError } from './views/materialise.ts';
import { PointNotFoundError, resolvePoint as resolveKeptPoint } from './views/resolve-point.ts';
import { ViewNotFoundError, ViewsUnavailableError, type ViewManager } from './views/view-manager.ts';
import { MissingBlocksError, READABLE_VERSIONS, ReferenceResolver } from './wan/references.ts';
import { IngestCounters, masterTargetMetrics } from './wan/metrics.ts';
import type { SpaceLimits } from './space-limits.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from '../core/metrics.ts';

/** Largest request body accepted: one frame plus slack. */
export const MAX_BODY_BYTES = MAX_FRAME_BYTES + 1024 * 1024;
/** Points listed when the request sets no limit. */
export const DEFAULT_POINTS_LIMIT = 100_000;

export interface AppDeps {
  store: StreamStore;
  retainer: Retainer;
  /** Space limits each batch is applied within; without them a full disk refuses batches (507). */
  space?: SpaceLimits;
  token?: string;
  /** Over TLS: who may do what, by client certificate (docs/security.md). */
  peers?: MasterTargetPeers;
  /** Client certificates on the vault's revocation list are refused (403) before anything else. */
  revocations?: RevocationList;
  log: Logger;
  /** Views over NBD; without them the view and failover routes answer 404. */
  views?: ViewManager;
  failover?: FailoverManager;
  /** Retention tiers applied to listings and point choice. */
  tiers?: TierPolicy;
  /** Clock of the tiers. @default Date.now */
  now?: () => number;
  /** Resolves references of version 2 frames. @default one over `store` */
  references?: ReferenceResolver;
}

class NotFound extends TidemarkError {}

export function createApp(deps: AppDeps): Hono {
  const { store, log } = deps;
  const references = deps.references ?? new ReferenceResolver(async (m, d, offset, into) => {
    const replica = store.get(m, d)?.replica;
    if (!replica) return false;
    await replica.readInto(into, offset);
    return true;
  });
  const counters = new IngestCounters();
  const app = new Hono();

  app.onError((err, c) => {
    if (c.req.method === 'POST' && c.req.path.endsWith('/batches')) counters.refusedBatches++;
    if (err instanceof FrameError) return c.json({ error: err.message, reason: err.reason, hint: err.hint }, 400);
    if (err instanceof MissingBlocksError) return c.json({ error: err.message, reason: 'missing-blocks', missing: err.missing, hint: err.hint }, 422);
    if (err instanceof BodyTooLargeError) return c.json({ error: err.message, hint: `send frames of at most ${MAX_FRAME_BYTES} bytes` }, 413);
    if (err instanceof NoSpaceError) return c.json({ error: err.message, hint: err.hint }, 507);
    if (err instanceof StreamUnavailableError) return c.json({ error: err.message, hint: err.hint }, 503);
    if (err instanceof MachineFailedOverError) return c.json({ error: err.message, hint: err.hint }, 423);
    if (err instanceof FailoverConflictError) return c.json({ error: err.message, hint: err.hint }, 409);
    if (err instanceof ViewsUnavailableError) return c.json({ error: err.message, hint: err.hint }, 409);
    if (err instanceof MaterialiseError) return c.json({ error: err.message, hint: err.hint }, 500);
    if (err instanceof NotFound || err instanceof PointOutOfRangeError || err instanceof PointNotFoundError || err instanceof ViewNotFoundError) return c.json({ error: err.message, hint: err.hint }, 404);
    if (err instanceof UsageError) return c.json({ error: err.message, hint: err.hint }, 400);
    log.error('request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: `internal error: ${err.message}`, hint: 'see the master target log' }, 500);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  if (deps.revocations) app.use('*', refuseRevoked(deps.revocations, log));
  app.use('*', deps.peers ? peerAccess({ token: deps.token, peers: deps.peers, log }) : bearerAuth(deps.token, log));

  app.get('/v1/streams/:machine/:disk', (c) => {
    const { machine, disk } = names(c);
    return c.json({ machine, disk, nextSeq: store.get(machine, disk)?.nextSeq ?? 1, wireVersions: READABLE_VERSIONS });
  });

  app.post('/v1/streams/:machine/:disk/batches', async (c) => {
    const { machine, disk } = names(c);
    deps.failover?.refuseIfFailedOver(machine);
    const body = await readBody(c, MAX_BODY_BYTES, { pool: frameBuffers });
    try {
      counters.receivedBytes += body.length;
      counters.receivedBatches++;
      const resolved = await references.resolve(body, frameBuffers);
      const batch = resolved.batch;
      try {
        const h = batch.header;
        if (h.machine !== machine || h.disk !== disk) {
          throw new FrameError('malformed', `frame is for ${h.machine}/${h.disk}, posted to ${machine}/${disk}`);
        }
        const existing = store.get(machine, disk);
        if (!existing && h.firstSeq !== 1) return gap(c, h.firstSeq, 1);
        const stream = existing ?? (await store.getOrCreate(machine, disk));
        const startedMs = performance.now();
        const r = deps.space ? await deps.space.apply(stream, batch) : await stream.apply(batch);
        if (r.status === 'gap') return gap(c, h.firstSeq, r.nextSeq);
        if (r.status === 'duplicate') return c.json({ nextSeq: r.nextSeq, duplicate: true });
        references.remember(machine, disk, resolved.blocks);
        counters.applied(batch, (performance.now() - startedMs) / 1000, resolved.referencedBytes);
        log.debug('batch applied', { machine, disk, firstSeq: h.firstSeq, lastSeq: h.lastSeq, frameBytes: h.totalBytes });
        return c.json({ nextSeq: r.nextSeq });
      } finally {
        releaseBatch(batch);
      }
    } finally {
      // Applied (or refused): the replica and the journal have what they need of these bytes.
      frameBuffers.release(body);
    }
  });

  app.get('/metrics', (c) => c.body(renderMetrics(masterTargetMetrics(counters, store, deps.views, references, deps.space)), 200, { 'content-type': METRICS_CONTENT_TYPE }));

  app.get('/v1/machines', (c) => {
    const byMachine = new Map<string, Array<{ disk: string; diskBytes: number; appliedSeq: number; journalBytes: number; shortenedForSpaceTime?: string }>>();
    for (const s of store.list()) {
      const disks = byMachine.get(s.machine) ?? [];
      const shortened = s.shortenedForSpaceMs === undefined ? {} : { shortenedForSpaceTime: new Date(s.shortenedForSpaceMs).toISOString() };
      disks.push({ disk: s.disk, diskBytes: s.diskBytes, appliedSeq: s.nextSeq - 1, journalBytes: s.journalBytes, ...shortened });
      byMachine.set(s.machine, disks);
    }
    return c.json({ machines: [...byMachine].map(([machine, disks]) => ({ machine, disks })) });
  });

  app.get('/v1/machines/:machine/disks/:disk/points', (c) => {
    const stream = streamOf(c);
    const sinceSeq = intParam(c, 'since') ?? 0;
    const limit = intParam(c, 'limit') ?? DEFAULT_POINTS_LIMIT;
    const listed = stream.points.list({ sinceSeq: Math.max(sinceSeq, stream.oldestSeq - 1), limit: limit + 1, notBeforeMs: deps.retainer.cutoffMs() });
    const applied = listed.filter((p) => p.seq <= stream.nextSeq - 1);
    const points = (deps.tiers ? thin(applied, stream.points, now(), deps.tiers) : applied).slice(0, limit);
    return c.json(listed.length > limit ? { points, truncated: true } : { points });
  });

  app.get('/v1/machines/:machine/disks/:disk/points/summary', (c) => c.json(pointsSummary(streamOf(c), {
    tiers: deps.tiers, nowMs: now(), cutoffMs: deps.retainer.cutoffMs(),
    recentLimit: Math.min(intParam(c, 'recent') ?? 50, 1000), markedLimit: Math.min(intParam(c, 'marked') ?? 200, 1000),
  })));

  app.get('/v1/machines/:machine/disks/:disk/image', async (c) => {
    const stream = streamOf(c);
    const seq = resolveKeptPoint(stream, c.req.query('at') ?? 'latest', rules()).seq;
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

  app.get('/v1/machines/:machine/disks/:disk/block-hashes', async (c) => {
    const { first, count } = parseBlockRange(c.req.query('first'), c.req.query('count'));
    return c.json(await replicaBlockHashes(streamOf(c), first, count));
  });

  const now = deps.now ?? Date.now;
  const rules = () => ({ tiers: deps.tiers ?? { fullSeconds: Number.POSITIVE_INFINITY }, now });

  app.post('/v1/machines/:machine/disks/:disk/views', async (c) => {
    const stream = streamOf(c);
    const body = await jsonBody(c);
    const at = typeof body.at === 'string' ? body.at : 'latest';
    const point = resolveKeptPoint(stream, at, rules());
    const view = await viewsOf().open(stream, point, body.writable === true);
    return c.json(view, 201);
  });

  app.get('/v1/views', (c) => c.json({ views: viewsOf().list(c.req.query('machine')) }));
  app.get('/v1/views/:id', (c) => c.json(viewsOf().get(c.req.param('id'))));
  app.delete('/v1/views/:id', async (c) => c.json(await viewsOf().close(c.req.param('id'))));

  app.post('/v1/machines/:machine/failover', async (c) => {
    const machine = names(c, false).machine;
    const fo = failoverOf();
    const body = await jsonBody(c);
    const at = typeof body.at === 'string' ? body.at : 'latest';
    if (body.mode === 'test') {
      const boot = body.boot === true ? {} : typeof body.boot === 'object' && body.boot ? (body.boot as Record<string, unknown>) : undefined;
      return c.json(await fo.test(machine, at, boot), 201);
    }
    if (body.mode !== 'live') throw new UsageError(`mode must be test or live, got ${JSON.stringify(body.mode)}`);
    const format = body.format === 'qcow2' ? 'qcow2' : 'raw';
    // Progress and the outcome as lines of JSON, so a client can show progress of a long copy.
    const enc = new TextEncoder();
    const line = (o: unknown) => enc.encode(JSON.stringify(o) + '\n');
    const abort = new AbortController();
    const out = new ReadableStream<Uint8Array>({
      start(controller) {
        fo.live(machine, at, { format, signal: abort.signal, onProgress: (disk, p) => controller.enqueue(line({ event: 'progress', disk, ...p })) })
          .then((report) => controller.enqueue(line({ event: 'done', report })))
          .catch((err: Error & { hint?: string }) => {
            log.error('live failover failed', { machine, error: err });
            controller.enqueue(line({ event: 'error', error: err.message, hint: err.hint }));
          })
          .finally(() => controller.close());
      },
      cancel() {
        abort.abort();
      },
    });
    return new Response(out, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
  });

  app.post('/v1/machines/:machine/cleanup', async (c) => c.json(await failoverOf().cleanup(names(c, false).machine)));

  function viewsOf(): ViewManager {
    if (!deps.views) throw new ViewsUnavailableError('this master target serves no views', { hint: 'start it with --nbd HOST:PORT' });
    return deps.views;
  }

  function failoverOf(): FailoverManager {
    if (!deps.failover) throw new ViewsUnavailableError('this master target does not run failovers', { hint: 'start it with --nbd HOST:PORT' });
    return deps.failover;
  }

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

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new UsageError('the request body must be a JSON object', { hint: 'send e.g. {"at":"latest","writable":true}' });
}

function names(c: Context, withDisk = true): { machine: string; disk: string } {
  const machine = c.req.param('machine') ?? '';
  const disk = withDisk ? (c.req.param('disk') ?? '') : 'none';
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
