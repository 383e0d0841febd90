/**
 * The control plane as one local Node process: the API on @hono/node-server, state and
 * queues on the embedded backends under `dataDir`, a consumer applying site reports as they
 * arrive, and a scheduler pass (job deadlines, stale-report alerts, drills) every
 * `scheduleIntervalMs`. `tidemark up` starts it.
 *
 * @example
 *   const cp = await startControlPlane({ dataDir: '/var/lib/tidemark', port: 7400 });
 *   console.log(cp.url, 'admin token in', cp.adminTokenPath);
 *   await cp.close();
 */
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { serve } from '../core/http/serve.ts';
import { silentLogger, type Logger } from '../core/log.ts';
import { createApp } from './app.ts';
import { contextOf, type ControlPlaneSettings } from './deps.ts';
import { authenticate } from './domain/authenticate.ts';
import { createOperatorToken } from './domain/operator-tokens.ts';
import { runScheduledWork } from './domain/scheduled-work.ts';
import { applyReceivedSiteEvents, drainSiteEvents, SITE_EVENT_VISIBILITY_SECONDS } from './domain/site-events.ts';
import { openEmbeddedDeps } from './embedded-deps.ts';

/** Default interval of the scheduler pass. */
export const DEFAULT_SCHEDULE_INTERVAL_MS = 60_000;
export const ADMIN_TOKEN_FILE = 'admin.token';
const LOCK_FILE = 'control-plane.lock';

export interface LocalControlPlaneOptions {
  /** Directory for state, queues, the lock and `admin.token`; created (mode 0700) if missing. */
  readonly dataDir: string;
  /** 0 picks a free port. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 60000 */
  readonly scheduleIntervalMs?: number;
  /** Milliseconds since the epoch; tests inject a clock. @default Date.now */
  readonly now?: () => number;
  /** @default silentLogger */
  readonly log?: Logger;
  readonly settings?: Partial<ControlPlaneSettings>;
}

export interface LocalControlPlane {
  /** Base URL, e.g. `http://127.0.0.1:7400`; the API is under `/api/v1`. */
  readonly url: string;
  readonly port: number;
  /** An admin operator token, also in `adminTokenPath` (mode 0600). */
  readonly adminToken: string;
  readonly adminTokenPath: string;
  /** Runs one scheduler pass now (the timer does this every `scheduleIntervalMs`). */
  runScheduledWork(): Promise<void>;
  /** Applies every queued site report now (the consumer does this as they arrive). */
  applySiteEvents(): Promise<number>;
  /** Stops serving, stops the loops, releases the directory. */
  close(): Promise<void>;
}

export async function startControlPlane(options: LocalControlPlaneOptions): Promise<LocalControlPlane> {
  const log = options.log ?? silentLogger;
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const releaseLock = await lockDirectory(options.dataDir);
  try {
    const deps = await openEmbeddedDeps({ dataDir: options.dataDir, now: options.now, log, settings: options.settings });
    const ctx = contextOf(deps);
    const adminTokenPath = join(options.dataDir, ADMIN_TOKEN_FILE);
    const adminToken = await ensureAdminToken(ctx, adminTokenPath);
    const listening = await serve(createApp(deps), { host: options.host ?? '127.0.0.1', port: options.port ?? 0 });

    const stop = new AbortController();
    let serial = Promise.resolve();
    /** The consumer and the scheduler never run at once: both are queued on `serial`. */
    const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = serial.then(fn);
      serial = run.then(() => undefined, () => undefined);
      return run;
    };
    const consumer = (async () => {
      while (!stop.signal.aborted) {
        try {
          // Long poll outside the exclusive section; apply inside it.
          const arrived = await deps.siteEvents.receive({
            waitSeconds: 20, maxMessages: 10, visibilityTimeoutSeconds: SITE_EVENT_VISIBILITY_SECONDS, signal: stop.signal,
          });
          if (arrived.length > 0) await exclusive(() => applyReceivedSiteEvents(ctx, arrived));
        } catch (err) {
          if (stop.signal.aborted) break;
          log.error('site events consumer failed', { error: err as Error });
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    const scheduled = () => exclusive(async () => {
      try {
        await runScheduledWork(ctx);
      } catch (err) {
        log.error('scheduled work failed', { error: err as Error });
      }
    });
    const timer = setInterval(() => void scheduled(), options.scheduleIntervalMs ?? DEFAULT_SCHEDULE_INTERVAL_MS);
    timer.unref();
    log.info('control plane listening', { url: listening.url, dataDir: options.dataDir });

    return {
      url: listening.url,
      port: listening.port,
      adminToken,
      adminTokenPath,
      runScheduledWork: scheduled,
      applySiteEvents: () => exclusive(() => drainSiteEvents(ctx)),
      async close() {
        clearInterval(timer);
        stop.abort();
        await listening.close();
        await consumer;
        await serial;
        await releaseLock();
      },
    };
  } catch (err) {
    await releaseLock();
    throw err;
  }
}

/** The admin token in `path` if it still works, otherwise a new one written there (0600). */
async function ensureAdminToken(ctx: ReturnType<typeof contextOf>, path: string): Promise<string> {
  const existing = await readFile(path, 'utf8').then((s) => s.trim(), () => undefined);
  if (existing) {
    const ok = await authenticate(ctx, `Bearer ${existing}`).then((p) => p.kind === 'operator' && p.actor.role === 'admin', () => false);
    if (ok) return existing;
  }
  const { token } = await createOperatorToken(ctx, null, { name: 'local admin', role: 'admin' });
  await writeFileAtomic(path, `${token}\n`);
  return token;
}

/** Takes `<dir>/control-plane.lock` (holding our pid); a lock of a dead process is taken over. */
async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await readFile(path, 'utf8').catch(() => ''));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new UsageError(`${dir} is in use by process ${pid}`, { hint: 'stop the other control plane or use another data directory' });
      }
      if (pid === process.pid) throw new UsageError(`${dir} is already open in this process`);
      await unlink(path).catch(() => undefined);
    }
  }
  throw new UsageError(`cannot lock ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
