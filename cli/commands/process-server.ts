import { parseListen } from '../../core/http/serve.ts';
import { createLogger } from '../../core/log.ts';
import { startProcessServer, DEFAULT_MAX_SPOOL_BYTES } from '../../process-server/server.ts';
import { parse, required, optional, parseBytes, parseUrl } from '../args.ts';
import { runUntilSignal } from '../run-until-signal.ts';
import type { Command } from './command.ts';

export const processServerCommand: Command = {
  name: 'process-server',
  summary: 'run a process server: durable spool between agents and the master target',
  help: `Usage: tidemark process-server --data DIR --listen HOST:PORT --master-target URL [--max-spool-bytes SIZE] [--token TOKEN]

Receives agents' batches, keeps them in a durable spool and ships them in order to the
master target, resuming wherever it stands after a restart or a dropped link.

  --data DIR              where the spool lives (created if missing)
  --listen HOST:PORT      address to serve agents on, e.g. 0.0.0.0:7401
  --master-target URL     the master target, e.g. http://dr-site:7402
  --max-spool-bytes SIZE  pending bytes allowed per disk before agents are told to wait (default ${DEFAULT_MAX_SPOOL_BYTES / 1024 ** 3}G)
  --token TOKEN           require this bearer token and send it on (default: $TIDEMARK_TOKEN)
`,
  async run(argv, env) {
    const { values } = parse('process-server', argv, {
      data: { type: 'string' }, listen: { type: 'string' }, 'master-target': { type: 'string' }, 'max-spool-bytes': { type: 'string' }, token: { type: 'string' },
    });
    const listen = parseListen(required('process-server', values, 'listen'));
    const spool = optional(values, 'max-spool-bytes');
    const ps = await startProcessServer({
      dataDir: required('process-server', values, 'data'),
      host: listen.host,
      port: listen.port,
      masterTargetUrl: parseUrl('master target', required('process-server', values, 'master-target')),
      token: optional(values, 'token') ?? env.token,
      maxSpoolBytes: spool ? parseBytes('max-spool-bytes', spool) : undefined,
      log: createLogger('process-server', { level: env.logLevel }),
    });
    process.stdout.write(`process server listening on ${ps.url}\n`);
    return runUntilSignal(() => ps.close());
  },
};
