import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { remoteError, requestJson } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { optional, parse, parseUrl, required } from '../args.ts';
import type { Command } from './command.ts';

interface CleanupReport {
  machine: string;
  closedViews: string[];
  deletedReplica?: string;
  seconds: number;
}

export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: "end a machine's test failover: delete its replica machine, close its views",
  help: `Usage: tidemark cleanup --master-target URL --machine M

Ends a test failover: deletes the replica machine (if one was booted) and closes every view
of the machine; whatever the drill wrote is discarded. Replication was never interrupted.

  --master-target URL  e.g. http://dr-site:7402
  --machine M          the machine of the drill
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('cleanup', argv, { 'master-target': { type: 'string' }, machine: { type: 'string' }, ...AUTH_OPTIONS });
    const url = parseUrl('master target', required('cleanup', values, 'master-target'));
    const machine = checkName('machine', required('cleanup', values, 'machine'));
    const r = await requestJson<CleanupReport>(url, 'POST', `/v1/machines/${machine}/cleanup`, {}, { ...(await peerAuth(url, values, env)), timeoutMs: 120_000 });
    if (r.status !== 200) throw remoteError(url, r);
    const c = r.body;
    const parts = [`${c.closedViews.length} view${c.closedViews.length === 1 ? '' : 's'} closed`];
    if (c.deletedReplica) parts.unshift(`replica machine ${c.deletedReplica} deleted`);
    process.stdout.write(`cleaned up ${machine}: ${parts.join(', ')} in ${c.seconds.toFixed(2)} s\n`);
    return 0;
  },
};
