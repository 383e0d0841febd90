/** The local stack of `tidemark up` and the demo: master target and process server in one process. */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { createLogger, type LogLevel } from '../core/log.ts';
import { startMasterTarget } from '../master-target/server.ts';
import { startProcessServer } from '../process-server/server.ts';

export interface LocalStackOptions {
  dataDir: string;
  host?: string;
  /** Port of the process server; the master target takes the next one. 0 picks free ports. */
  port: number;
  token?: string;
  retentionSeconds?: number;
  logLevel?: LogLevel;
}

export interface LocalStack {
  processServerUrl: string;
  masterTargetUrl: string;
  close(): Promise<void>;
}

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  await mkdir(o.dataDir, { recursive: true });
  const host = o.host ?? '127.0.0.1';
  const mt = await startMasterTarget({
    dataDir: join(o.dataDir, 'master-target'),
    host,
    port: o.port === 0 ? 0 : o.port + 1,
    token: o.token,
    retentionSeconds: o.retentionSeconds ?? 24 * 3600,
    log: createLogger('master-target', { level: o.logLevel ?? 'info' }),
  });
  const ps = await startProcessServer({
    dataDir: join(o.dataDir, 'process-server'),
    host,
    port: o.port,
    masterTargetUrl: mt.url,
    token: o.token,
    log: createLogger('process-server', { level: o.logLevel ?? 'info' }),
  });
  return {
    processServerUrl: ps.url,
    masterTargetUrl: mt.url,
    async close() {
      await ps.close();
      await mt.close();
    },
  };
}
