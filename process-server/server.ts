/** Starts a process server: spool, shipping loops and the HTTP API. */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { loadHashing } from '../core/hash.ts';
import { serve, type Listening } from '../core/http/serve.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { Streams } from './streams.ts';
import { processServerApp } from './http.ts';

/** Default limit of pending (not yet applied) bytes per stream. */
export const DEFAULT_MAX_SPOOL_BYTES = 8 * 1024 * 1024 * 1024;

export interface ProcessServerOptions {
  dataDir: string;
  host: string;
  port: number;
  masterTargetUrl: string;
  token?: string;
  /** Token for the master target, when it differs from `token`. */
  masterTargetToken?: string;
  maxSpoolBytes?: number;
  log?: Logger;
}

export interface ProcessServer extends Listening {
  streams: Streams;
}

export async function startProcessServer(o: ProcessServerOptions): Promise<ProcessServer> {
  await loadHashing();
  const log = o.log ?? createLogger('process-server');
  const spoolDir = join(o.dataDir, 'spool');
  await mkdir(spoolDir, { recursive: true });
  const streams = new Streams(spoolDir, { url: o.masterTargetUrl, token: o.masterTargetToken ?? o.token }, log);
  await streams.openExisting();
  const app = processServerApp({ streams, token: o.token, maxSpoolBytes: o.maxSpoolBytes ?? DEFAULT_MAX_SPOOL_BYTES, log });
  const listening = await serve(app, { host: o.host, port: o.port });
  log.info('process server listening', { url: listening.url, masterTarget: o.masterTargetUrl, streams: streams.all().length });
  return {
    ...listening,
    streams,
    async close() {
      await listening.close();
      await streams.close();
    },
  };
}
