import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { getJson } from '../../core/http/client.ts';
import { parse, required, optional, parseUrl } from '../args.ts';
import { table } from '../table.ts';
import type { Command } from './command.ts';

interface DiskStatus {
  machine: string;
  disk: string;
  state: string;
  lagSeconds: number;
  backlogBytes: number;
  receivedSeq: number;
  appliedSeq: number;
  initialSync?: { doneBytes: number; totalBytes: number };
  error?: string;
}

export const statusCommand: Command = {
  name: 'status',
  summary: "show each disk's replication state, lag and backlog at a process server",
  help: `Usage: tidemark status --process-server URL [--json]

  --process-server URL  e.g. http://ps.local:7401
  --json                print {"disks": [{machine, disk, state, lagSeconds, backlogBytes, ...}]}
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('status', argv, { 'process-server': { type: 'string' }, json: { type: 'boolean' }, ...AUTH_OPTIONS });
    const url = parseUrl('process server', required('status', values, 'process-server'));
    const r = await getJson<{ disks: DiskStatus[] }>(url, '/v1/status', await peerAuth(url, values, env));
    if (values.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return 0;
    }
    if (r.disks.length === 0) {
      process.stdout.write('no disks have reported to this process server yet\n');
      return 0;
    }
    process.stdout.write(table(
      ['MACHINE', 'DISK', 'STATE', 'LAG', 'BACKLOG', 'APPLIED/RECEIVED', 'NOTE'],
      r.disks.map((d) => [
        d.machine, d.disk, d.state, `${d.lagSeconds.toFixed(1)} s`, `${(d.backlogBytes / 1024 / 1024).toFixed(1)} MiB`, `${d.appliedSeq}/${d.receivedSeq}`,
        d.error ?? (d.initialSync ? `initial sync ${Math.floor((100 * d.initialSync.doneBytes) / Math.max(1, d.initialSync.totalBytes))}%` : ''),
      ]),
    ));
    return 0;
  },
};
