import { UsageError } from '../../core/errors.ts';
import { createLogger } from '../../core/log.ts';
import { runAgent } from '../../edge-agent/agent.ts';
import { parse, required, optional, parseDurationSeconds, parseUrl } from '../args.ts';
import { progressPrinter } from './progress.ts';
import type { Command } from './command.ts';

export const agentCommand: Command = {
  name: 'agent',
  summary: 'protect disks of this machine: stream their changes to a process server',
  help: `Usage: tidemark agent --state DIR --process-server URL --machine NAME --disk PATH [--disk PATH ...]
                      --mode scan --interval SECONDS [--freeze-cmd CMD] [--thaw-cmd CMD] [--token TOKEN]

Protects files or block devices. Disks are named disk0, disk1, ... in the order given.
The initial sync skips zero blocks and resumes where it stopped; then every interval the
disks are rescanned and only changed 64 KiB blocks are sent. Each scan is a recovery point.

  --state DIR           the agent's own state (cursor, block-hash manifest); keep it across restarts
  --process-server URL  e.g. http://ps.local:7401
  --machine NAME        this machine's name in Tidemark
  --disk PATH           a file or block device to protect (repeat for more disks)
  --mode scan           capture mode (scan: periodic block-hash comparison)
  --interval SECONDS    time between scans (e.g. 30, 5m)
  --freeze-cmd CMD      run before each scan (fsfreeze, a database flush); the point is then app-consistent
  --thaw-cmd CMD        run after each scan's reads, even if the scan failed
  --token TOKEN         bearer token for the process server (default: $TIDEMARK_TOKEN)
`,
  async run(argv, env) {
    const { values } = parse('agent', argv, {
      state: { type: 'string' }, 'process-server': { type: 'string' }, machine: { type: 'string' },
      disk: { type: 'string', multiple: true }, mode: { type: 'string' }, interval: { type: 'string' },
      'freeze-cmd': { type: 'string' }, 'thaw-cmd': { type: 'string' }, token: { type: 'string' },
    });
    const disks = (values.disk as string[] | undefined) ?? [];
    if (disks.length === 0) throw new UsageError('agent: give at least one --disk PATH', { hint: "see 'tidemark agent --help'" });
    const mode = optional(values, 'mode') ?? 'scan';
    if (mode !== 'scan') throw new UsageError(`agent: unknown --mode ${mode}`, { hint: 'this build supports --mode scan' });
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('stopped'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await runAgent({
      machine: required('agent', values, 'machine'),
      disks,
      stateDir: required('agent', values, 'state'),
      processServerUrl: parseUrl('process server', required('agent', values, 'process-server')),
      token: optional(values, 'token') ?? env.token,
      intervalSeconds: parseDurationSeconds('interval', required('agent', values, 'interval')),
      hooks: { freezeCmd: optional(values, 'freeze-cmd'), thawCmd: optional(values, 'thaw-cmd'), timeoutMs: 120_000 },
      log: createLogger('agent', { level: env.logLevel }),
      onEvent: progressPrinter(),
      signal: controller.signal,
    });
    return 0;
  },
};
