/** The process server's HTTP API (docs/wire-format.md, "Ingest" and "Process server only"). */
import { Hono } from 'hono';
import { z } from 'zod';
import { verifyFrame, MAX_FRAME_BYTES } from '../core/wire/frame.ts';
import { FrameError } from '../core/errors.ts';
import { tokenMatches } from '../core/http/auth.ts';
import type { MiddlewareHandler } from 'hono';
import { readBody, BodyTooLargeError } from '../core/http/body.ts';
import { isValidName } from '../core/names.ts';
import { PeerUnreachableError } from '../core/http/client.ts';
import type { Logger } from '../core/log.ts';
import type { Streams } from './streams.ts';
import type { AcceptResult } from './stream.ts';
import { frameBuffers } from './frame-buffers.ts';
import type { BookmarkBook } from './bookmarks.ts';
import { diskStatus } from './status.ts';
import { blockHashesFor } from './block-hashes.ts';
import { AgentVerificationUnavailableError, type AgentAuthenticator } from './site-link/agent-auth.ts';
import type { WanLink } from './wan/wan-link.ts';
import { processServerMetrics } from './wan/metrics.ts';
import type { PushInstaller } from './push-install/push-installer.ts';
import { pushInstallRoutes } from './push-install/routes.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from '../core/metrics.ts';
import { peerIdentity } from '../core/tls/peer.ts';
import { peerVerdict, type ProcessServerPeers } from './peer-access.ts';
import { refuseRevoked } from '../core/tls/revocation-guard.ts';
import type { RevocationList } from '../core/tls/revocation-list.ts';

export interface ProcessServerAppOptions {
  streams: Streams;
  /** The shared bearer token (labs): it may do everything. */
  token?: string;
  /** Accepts agents by their own credential, confirmed by the control plane; they may touch only their machine's streams. */
  agentAuth?: AgentAuthenticator;
  /** Over TLS: agents and operators by client certificate (`peer-access.ts`). */
  peers?: ProcessServerPeers;
  /** Client certificates on the vault's revocation list are refused (403) before anything else. */
  revocations?: RevocationList;
  maxSpoolBytes: number;
  /** Bookmark requests waiting for agents. */
  bookmarks: BookmarkBook;
  log: Logger;
  /** The shared WAN link: spool budget for status, counters for /metrics. */
  wan?: WanLink;
  /** Push installs of agents over SSH (`/v1/push-installs`). */
  pushInstaller?: PushInstaller;
}

const Heartbeat = z.object({
  disks: z.array(z.object({
    disk: z.string().refine(isValidName, 'invalid disk name'),
    phase: z.enum(['INITIAL_SYNC', 'CONTINUOUS', 'RESYNC']),
    doneBytes: z.number().int().nonnegative().optional(),
    totalBytes: z.number().int().nonnegative().optional(),
    intervalSeconds: z.number().nonnegative().optional(),
  })).max(256),
  bookmarks: z.array(z.object({
    id: z.string().max(64),
    disk: z.string().refine(isValidName, 'invalid disk name'),
    seq: z.number().int().positive().optional(),
    error: z.string().max(500).optional(),
  })).max(1024).optional(),
});

const BookmarkBody = z.object({ name: z.string().min(1).max(200) });

/** What authentication found: `agentMachine` is set when the caller is an agent (not the shared token). */
type Env = { Variables: { agentMachine?: string } };

/**
 * With neither a token nor agent authentication configured every request passes (a lab).
 * Otherwise a request needs the shared token, or an agent credential the control plane
 * confirms; an agent is then held to its own machine by `ownMachine`.
 */
function authenticate(o: ProcessServerAppOptions): MiddlewareHandler<Env> {
  return async (c, next) => {
    if ((!o.token && !o.agentAuth && !o.peers) || c.req.path === '/healthz') return next();
    const peer = o.peers && peerIdentity(c);
    if (peer) {
      const verdict = peerVerdict(peer, o.peers!);
      if (verdict.kind === 'refused') {
        o.log.warn('request refused', { method: c.req.method, path: c.req.path, peer: `${peer.role} ${peer.name}`, reason: verdict.error });
        return c.json({ error: verdict.error, hint: 'enable the machine\'s protection on this process server, or use an operator certificate' }, 403);
      }
      if (verdict.kind === 'agent') c.set('agentMachine', verdict.machine);
      return next();
    }
    const header = c.req.header('authorization');
    const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (o.token && tokenMatches(o.token, presented)) return next();
    if (o.agentAuth && presented) {
      const agent = await o.agentAuth(presented);
      if (agent) {
        c.set('agentMachine', agent.machineName);
        return next();
      }
    }
    o.log.warn('request refused: bad credentials', { method: c.req.method, path: c.req.path, presented: presented === undefined ? 'none' : 'wrong' });
    return c.json({
      error: 'missing or wrong credential',
      hint: o.agentAuth
        ? "use the agent's credential from enrollment (its machine must be protected on this process server) or the shared token"
        : 'set TIDEMARK_TOKEN (or --token) to the same value on every component',
    }, 401);
  };
}

/** 403 unless the caller has the shared token or is the agent of `machine`. */
function ownMachine(c: { get(k: 'agentMachine'): string | undefined }, machine: string): string | undefined {
  const agent = c.get('agentMachine');
  return agent !== undefined && agent !== machine ? `this agent's credential is for machine ${agent}, not ${machine}` : undefined;
}

export function processServerApp(o: ProcessServerAppOptions): Hono<Env> {
  const app = new Hono<Env>();
  app.get('/healthz', (c) => c.json({ ok: true }));
  if (o.revocations) app.use('*', refuseRevoked(o.revocations, o.log));
  app.use('*', authenticate(o));
  if (o.pushInstaller) app.route('/', pushInstallRoutes(o.pushInstaller));

  app.use('/v1/streams/:machine/:disk/*', async (c, next) => {
    if (!isValidName(c.req.param('machine')) || !isValidName(c.req.param('disk'))) return c.json({ error: 'invalid machine or disk name' }, 400);
    const refused = ownMachine(c, c.req.param('machine'));
    if (refused) return c.json({ error: refused }, 403);
    return next();
  });

  app.get('/v1/streams/:machine/:disk', async (c) => {
    const { machine, disk } = c.req.param();
    if (!isValidName(machine) || !isValidName(disk)) return c.json({ error: 'invalid machine or disk name' }, 400);
    const refused = ownMachine(c, machine);
    if (refused) return c.json({ error: refused }, 403);
    const s = await o.streams.get(machine, disk);
    s.lastContactMs = Date.now();
    return c.json({ machine, disk, nextSeq: await s.acceptNextSeq() });
  });

  app.post('/v1/streams/:machine/:disk/batches', async (c) => {
    const { machine, disk } = c.req.param();
    const body = await readBody(c, MAX_FRAME_BYTES, { pool: frameBuffers });
    let r: AcceptResult;
    try {
      const header = verifyFrame(body);
      if (header.machine !== machine || header.disk !== disk) {
        return c.json({ error: `frame is for ${header.machine}/${header.disk}, not ${machine}/${disk}`, reason: 'malformed' }, 400);
      }
      const s = await o.streams.get(machine, disk);
      r = await s.accept(body, header, o.maxSpoolBytes);
    } finally {
      // The spool has the frame now (or refused it): the buffer is free again.
      frameBuffers.release(body);
    }
    if (r.status === 507) {
      o.log.warn('batch refused: no room', { machine, disk, error: r.error });
      return c.json({ error: r.error, hint: 'the master target is not keeping up or is unreachable; the agent retries' }, 507);
    }
    const { status, ...answer } = r;
    return c.json(answer, status);
  });

  app.get('/v1/streams/:machine/:disk/block-hashes', async (c) => {
    const r = await blockHashesFor(await o.streams.get(c.req.param('machine'), c.req.param('disk')), c.req.query());
    return c.json(r.body, r.status);
  });

  app.post('/v1/agents/:machine/heartbeat', async (c) => {
    const machine = c.req.param('machine');
    if (!isValidName(machine)) return c.json({ error: 'invalid machine name' }, 400);
    const refused = ownMachine(c, machine);
    if (refused) return c.json({ error: refused }, 403);
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
    for (const b of parsed.data.bookmarks ?? []) o.bookmarks.complete(machine, b.id, b.disk, { seq: b.seq, error: b.error });
    return c.json({ bookmarks: o.bookmarks.pendingFor(machine) });
  });

  app.post('/v1/machines/:machine/bookmarks', async (c) => {
    const machine = c.req.param('machine');
    if (!isValidName(machine)) return c.json({ error: 'invalid machine name' }, 400);
    const refused = ownMachine(c, machine);
    if (refused) return c.json({ error: refused }, 403);
    const parsed = BookmarkBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) return c.json({ error: 'invalid bookmark: name must be 1-200 characters' }, 400);
    const b = o.bookmarks.request(machine, parsed.data.name);
    o.log.info('bookmark requested', { machine, name: b.name, id: b.id });
    return c.json(b, 202);
  });

  app.get('/v1/machines/:machine/bookmarks/:id', (c) => {
    const refused = ownMachine(c, c.req.param('machine'));
    if (refused) return c.json({ error: refused }, 403);
    const b = o.bookmarks.get(c.req.param('id'));
    if (!b || b.machine !== c.req.param('machine')) return c.json({ error: 'no such bookmark request', hint: 'requests are kept in memory for a day' }, 404);
    return c.json(b);
  });

  app.get('/v1/status', (c) => {
    if (c.get('agentMachine') !== undefined) return c.json({ error: 'agents may not read the status of every stream' }, 403);
    const now = Date.now();
    return c.json({ disks: o.streams.all().map((s) => diskStatus(s, now)), ...(o.wan ? { spool: o.wan.budget.status() } : {}) });
  });

  app.get('/metrics', (c) => {
    if (c.get('agentMachine') !== undefined) return c.json({ error: 'agents may not read the metrics of every stream' }, 403);
    return c.body(renderMetrics(processServerMetrics(o.streams.all(), o.wan, Date.now())), 200, { 'content-type': METRICS_CONTENT_TYPE });
  });

  app.onError((err, c) => {
    if (err instanceof FrameError) return c.json({ error: err.message, reason: err.reason, hint: err.hint }, 400);
    if (err instanceof BodyTooLargeError) return c.json({ error: err.message }, 413);
    if (err instanceof AgentVerificationUnavailableError) {
      o.log.warn('agent credential not verified: control plane unavailable', { path: c.req.path, error: err });
      return c.json({ error: err.message, hint: err.hint }, 503);
    }
    if (err instanceof PeerUnreachableError) return c.json({ error: `master target unreachable: ${err.message}`, hint: 'retry; the process server needs the master target to learn where a new stream stands' }, 503);
    o.log.error('request failed', { method: c.req.method, path: c.req.path, error: err });
    return c.json({ error: `internal error: ${err.message}` }, 500);
  });
  return app;
}
