/**
 * The site-facing endpoints (docs/control-plane-api.md): enrollment with a registration key,
 * and, with a site credential, the command long poll, acknowledgements, heartbeats and job
 * events. Sites only ever call out; nothing here calls a site.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { AgentVerificationRequest, EnrollRequest, Heartbeat, JobEvents } from '../../core/control-plane/protocol.ts';
import type { Context } from '../deps.ts';
import { verifyAgentCredential } from '../domain/agent-verification.ts';
import { enroll } from '../domain/enrollment.ts';
import { keys } from '../domain/keys.ts';
import { Machine, Server } from '../domain/records.ts';
import { ackCommands, pollCommands } from '../domain/site-commands.ts';
import { enqueueHeartbeat, enqueueJobEvents } from '../domain/site-events.ts';
import { ForbiddenError } from '../errors.ts';
import { MAX_WAIT_SECONDS } from '../queue/message-queue.ts';
import { server, site, type AppEnv } from './env.ts';
import { bearer, errorResponses, jsonBody, jsonResponse } from './route-helpers.ts';

const ServerRef = z.object({ id: z.string(), url: z.string().nullable() });
const EnrollResponse = z.object({
  vaultId: z.string(), siteId: z.string(), role: z.enum(['process-server', 'master-target', 'agent']),
  credential: z.string().describe('bearer credential of this component, shown once'),
  serverId: z.string().optional(), machineId: z.string().optional(),
  disks: z.array(z.object({ id: z.string(), name: z.string(), sizeBytes: z.number() })).optional(),
  certificate: z.string().optional().describe("with a csr: this component's certificate (PEM), signed by the vault's CA"),
  caCertificate: z.string().optional().describe("with a csr: the vault CA's certificate (PEM), the only one to trust"),
}).openapi('EnrollResponse');
const PolledCommands = z.object({
  commands: z.array(z.object({
    receipt: z.string(),
    receiveCount: z.number().int(),
    command: z.any().describe('a site command, docs/control-plane-api.md'),
  })),
}).openapi('PolledCommands');
const Accepted = z.object({ accepted: z.number().int() });

export function registerSiteRoutes(app: OpenAPIHono<AppEnv>, ctx: Context): void {
  app.openapi(
    createRoute({
      method: 'post', path: '/enroll', tags: ['site'], summary: 'enroll a process server, master target or agent with a registration key',
      request: { body: jsonBody(EnrollRequest) },
      responses: { 201: jsonResponse(EnrollResponse, 'the component and its credential'), ...errorResponses },
    }),
    async (c) => c.json(await enroll(ctx, c.req.valid('json')), 201),
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/site/commands', tags: ['site'], security: bearer,
      summary: "long-poll this server's command queue",
      request: {
        query: z.object({
          waitSeconds: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(MAX_WAIT_SECONDS),
          maxCommands: z.coerce.number().int().min(1).max(10).default(10),
        }),
      },
      responses: { 200: jsonResponse(PolledCommands, 'commands, possibly none'), ...errorResponses },
    }),
    async (c) => {
      const { serverId } = server(c);
      const q = c.req.valid('query');
      return c.json({ commands: await pollCommands(ctx, serverId, { waitSeconds: q.waitSeconds, maxCommands: q.maxCommands, signal: c.req.raw.signal }) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/site/commands/ack', tags: ['site'], security: bearer, summary: 'acknowledge carried-out commands',
      request: { body: jsonBody(z.object({ receipts: z.array(z.string().min(1).max(4096)).min(1).max(10) })) },
      responses: { 200: jsonResponse(z.object({ acknowledged: z.number().int() }), 'done'), ...errorResponses },
    }),
    async (c) => {
      const { serverId } = server(c);
      const { receipts } = c.req.valid('json');
      await ackCommands(ctx, serverId, receipts);
      return c.json({ acknowledged: receipts.length }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/site/heartbeat', tags: ['site'], security: bearer, summary: 'heartbeat with per-disk metrics',
      request: { body: jsonBody(Heartbeat) },
      responses: { 202: jsonResponse(Accepted, 'queued for applying'), ...errorResponses },
    }),
    async (c) => {
      const { vaultId, serverId } = server(c);
      const hb = c.req.valid('json');
      await enqueueHeartbeat(ctx, vaultId, serverId, hb);
      return c.json({ accepted: hb.disks.length }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/site/job-events', tags: ['site'], security: bearer, summary: 'events of jobs this master target runs',
      request: { body: jsonBody(JobEvents) },
      responses: { 202: jsonResponse(Accepted, 'queued for applying'), ...errorResponses },
    }),
    async (c) => {
      const { vaultId, serverId } = server(c);
      const { events } = c.req.valid('json');
      await enqueueJobEvents(ctx, vaultId, serverId, events);
      return c.json({ accepted: events.length }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/site/assignment', tags: ['site'], security: bearer, summary: "an agent's machine, disks and process server",
      responses: {
        200: jsonResponse(z.object({
          machineId: z.string(),
          disks: z.array(z.object({ id: z.string(), name: z.string(), sizeBytes: z.number() })),
          processServer: ServerRef.nullable(),
        }).openapi('AgentAssignment'), 'the assignment'),
        ...errorResponses,
      },
    }),
    async (c) => {
      const caller = site(c);
      if (caller.principal.kind !== 'agent') throw new ForbiddenError('only agents have an assignment');
      const m = (await ctx.repo.get(keys.item(caller.vaultId, 'machines', caller.principal.machineId), Machine))!;
      const ps = m.protection ? await ctx.repo.get(keys.item(caller.vaultId, 'servers', m.protection.processServerId), Server) : undefined;
      return c.json({
        machineId: m.id,
        disks: m.disks.map((d) => ({ id: d.id, name: d.name, sizeBytes: d.sizeBytes })),
        processServer: ps ? { id: ps.id, url: ps.url } : null,
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/site/agents/verify', tags: ['site'], security: bearer,
      summary: 'process servers: is this an agent credential of a machine assigned to me?',
      request: { body: jsonBody(AgentVerificationRequest) },
      responses: {
        200: jsonResponse(z.object({
          valid: z.boolean(),
          machineId: z.string().optional(),
          machineName: z.string().optional(),
          disks: z.array(z.object({ id: z.string(), name: z.string() })).optional(),
          reason: z.string().optional().describe('why the credential is not valid here'),
        }).openapi('AgentVerification'), 'the verdict'),
        ...errorResponses,
      },
    }),
    async (c) => {
      const caller = server(c);
      if (caller.role !== 'process-server') throw new ForbiddenError('only process servers verify agent credentials');
      return c.json(await verifyAgentCredential(ctx, caller.vaultId, caller.serverId, c.req.valid('json').credential), 200);
    },
  );
}
