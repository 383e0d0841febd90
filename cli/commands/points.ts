import { getJson } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { parse, required, optional, parseUrl } from '../args.ts';
import { table } from '../table.ts';
import type { Command } from './command.ts';

export interface Point {
  id: string;
  seq: number;
  time: string;
  kind: string;
  consistent: boolean;
  name?: string;
}

export const pointsCommand: Command = {
  name: 'points',
  summary: "list a disk's recovery points",
  help: `Usage: tidemark points --master-target URL --machine NAME --disk DISK [--json]

Lists the recovery points of one disk, oldest first.

  --master-target URL  e.g. http://dr-site:7402
  --machine NAME       the protected machine
  --disk DISK          disk0, disk1, ...
  --json               print an array of {id, seq, time, kind, consistent}
  --token TOKEN        bearer token (default: $TIDEMARK_TOKEN)
`,
  async run(argv, env) {
    const { values } = parse('points', argv, {
      'master-target': { type: 'string' }, machine: { type: 'string' }, disk: { type: 'string' }, json: { type: 'boolean' }, token: { type: 'string' },
    });
    const url = parseUrl('master target', required('points', values, 'master-target'));
    const machine = checkName('machine', required('points', values, 'machine'));
    const disk = checkName('disk', required('points', values, 'disk'));
    const r = await getJson<{ points: Point[] }>(url, `/v1/machines/${machine}/disks/${disk}/points`, { token: optional(values, 'token') ?? env.token });
    const points = r.points.map((p) => ({ id: p.id, seq: p.seq, time: p.time, kind: p.kind, consistent: p.consistent, ...(p.name ? { name: p.name } : {}) }));
    if (values.json) {
      process.stdout.write(JSON.stringify(points, null, 2) + '\n');
      return 0;
    }
    if (points.length === 0) {
      process.stdout.write(`no recovery points yet for ${machine}/${disk}\n`);
      return 0;
    }
    process.stdout.write(table(['ID', 'TIME', 'KIND', 'CONSISTENT', 'NAME'], points.map((p) => [p.id, p.time, p.kind, p.consistent ? 'yes' : 'no', p.name ?? ''])));
    return 0;
  },
};
