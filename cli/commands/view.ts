import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { UsageError } from '../../core/errors.ts';
import { remoteError, requestJson } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { optional, parse, parseUrl, required } from '../args.ts';
import type { Command } from './command.ts';

interface ViewInfo {
  id: string;
  uri: string;
  writable: boolean;
  point: { id: string; seq: number; time: string; kind: string };
  sizeBytes: number;
}

export const viewCommand: Command = {
  name: 'view',
  summary: 'open (or close) a point-in-time view of a disk, served over NBD',
  help: `Usage: tidemark view --master-target URL --machine M --disk D --at POINT [--writable]
       tidemark view --master-target URL --close VIEW_ID

Serves the disk as it was at a recovery point over NBD, without copying it: any NBD client
(qemu, qemu-img, nbdcopy, nbdfuse) can read it. Replication goes on meanwhile, and retention
keeps what an open view needs. A writable view keeps its writes in a scratch overlay at the
master target; they never reach the replica and are discarded when the view closes. Views end
when the master target restarts.

  --master-target URL  e.g. http://dr-site:7402 (started with --nbd)
  --machine M          the protected machine
  --disk D             disk0, disk1, ...
  --at POINT           latest, a point id from 'tidemark points', or an ISO time
  --writable           add a copy-on-write scratch overlay
  --close VIEW_ID      close a view (its writes are gone)
  --json               print the view as JSON
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('view', argv, {
      'master-target': { type: 'string' }, machine: { type: 'string' }, disk: { type: 'string' }, at: { type: 'string' },
      writable: { type: 'boolean' }, close: { type: 'string' }, json: { type: 'boolean' }, ...AUTH_OPTIONS,
    });
    const url = parseUrl('master target', required('view', values, 'master-target'));
    const auth = await peerAuth(url, values, env);
    const close = optional(values, 'close');
    if (close) {
      if (!/^[A-Za-z0-9]{1,64}$/.test(close)) throw new UsageError(`view: invalid view id ${JSON.stringify(close)}`, { hint: 'use an id printed by tidemark view' });
      const r = await requestJson<ViewInfo>(url, 'DELETE', `/v1/views/${close}`, undefined, auth);
      if (r.status !== 200) throw remoteError(url, r);
      process.stdout.write(`closed view ${close}${r.body.writable ? '; its writes are discarded' : ''}\n`);
      return 0;
    }
    const machine = checkName('machine', required('view', values, 'machine'));
    const disk = checkName('disk', required('view', values, 'disk'));
    const at = required('view', values, 'at');
    const started = performance.now();
    const r = await requestJson<ViewInfo>(url, 'POST', `/v1/machines/${machine}/disks/${disk}/views`, { at, writable: values.writable === true }, auth);
    if (r.status !== 201) throw remoteError(url, r);
    const v = r.body;
    if (values.json) {
      process.stdout.write(JSON.stringify(v, null, 2) + '\n');
      return 0;
    }
    const ms = performance.now() - started;
    process.stdout.write(`${v.uri}\n`);
    process.stdout.write(`view ${v.id}: ${machine}/${disk} at point ${v.point.id} (${v.point.kind}, ${v.point.time}), ${(v.sizeBytes / 2 ** 20).toFixed(0)} MiB, ${v.writable ? 'writable (scratch overlay)' : 'read-only'}, opened in ${ms.toFixed(0)} ms\n`);
    process.stdout.write(`close it with: tidemark view --master-target ${url} --close ${v.id}\n`);
    return 0;
  },
};
