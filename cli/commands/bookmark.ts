import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { requestJson, remoteError } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { TidemarkError, UsageError } from '../../core/errors.ts';
import { parse, required, optional, parseUrl, parseDurationSeconds } from '../args.ts';
import { table } from '../table.ts';
import type { Command } from './command.ts';

interface BookmarkRequest {
  id: string;
  name: string;
  disks: Record<string, { seq?: number; error?: string }>;
}

export const bookmarkCommand: Command = {
  name: 'bookmark',
  summary: 'tag a named recovery point on every disk of a machine',
  help: `Usage: tidemark bookmark --process-server URL --machine NAME [--timeout DURATION] BOOKMARK_NAME

Asks the machine's agent, through its process server, to tag a named point on every disk at
the same moment (tap mode: the current write boundary; scan mode: a scan that starts at once).
Waits until the agent has tagged it and prints each disk's point id.

  --process-server URL  the process server the agent sends to
  --machine NAME        the protected machine
  --timeout DURATION    how long to wait for the agent (default 2m)
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values, positionals } = parse('bookmark', argv, {
      'process-server': { type: 'string' }, machine: { type: 'string' }, timeout: { type: 'string' }, ...AUTH_OPTIONS,
    }, true);
    if (positionals.length !== 1) throw new UsageError('bookmark: give exactly one BOOKMARK_NAME', { hint: "e.g. tidemark bookmark --process-server URL --machine web-01 'before upgrade'" });
    const url = parseUrl('process server', required('bookmark', values, 'process-server'));
    const auth = await peerAuth(url, values, env);
    const machine = checkName('machine', required('bookmark', values, 'machine'));
    const timeoutMs = parseDurationSeconds('timeout', optional(values, 'timeout') ?? '2m') * 1000;
    const asked = await requestJson<BookmarkRequest & { error?: string }>(url, 'POST', `/v1/machines/${machine}/bookmarks`, { name: positionals[0] }, auth);
    if (asked.status !== 202) throw remoteError(url, asked);
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await requestJson<BookmarkRequest & { error?: string }>(url, 'GET', `/v1/machines/${machine}/bookmarks/${asked.body.id}`, undefined, auth);
      if (r.status !== 200) throw remoteError(url, r);
      const disks = Object.entries(r.body.disks);
      if (disks.length) {
        process.stdout.write(table(['DISK', 'POINT', 'NOTE'], disks.sort().map(([d, x]) => [d, x.seq !== undefined ? String(x.seq) : '-', x.error ?? `bookmark "${r.body.name}"`])));
        return disks.every(([, x]) => x.seq !== undefined) ? 0 : 1;
      }
      if (Date.now() > until) {
        throw new TidemarkError(`the agent of ${machine} has not taken the bookmark within ${timeoutMs / 1000} s`, { hint: "check that the agent is running and reporting: 'tidemark status'" });
      }
      await new Promise((res) => setTimeout(res, 500));
    }
  },
};
