import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { getJson } from '../../core/http/client.ts';
import { UsageError } from '../../core/errors.ts';
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

interface PointRun {
  first: Point;
  last: Point;
  count: number;
}

/** Groups consecutive unnamed crash points (a tap-mode disk's write boundaries) into runs. */
export function compact(points: Point[]): PointRun[] {
  const runs: PointRun[] = [];
  for (const p of points) {
    const run = runs[runs.length - 1];
    const joinable = p.kind === 'crash' && !p.name && run && run.first.kind === 'crash' && !run.last.name && !run.first.name && run.last.seq + 1 === p.seq;
    if (joinable) {
      run.last = p;
      run.count++;
    } else runs.push({ first: p, last: p, count: 1 });
  }
  return runs;
}

export const pointsCommand: Command = {
  name: 'points',
  summary: "list a disk's recovery points",
  help: `Usage: tidemark points --master-target URL --machine NAME --disk DISK [--since SEQ] [--limit N] [--json]

Lists the recovery points of one disk, oldest first. In tap mode every write is a point:
runs of consecutive crash-consistent points are shown as one line (FIRST-LAST), and
--since/--limit page through a busy disk.

  --master-target URL  e.g. http://dr-site:7402
  --machine NAME       the protected machine
  --disk DISK          disk0, disk1, ...
  --since SEQ          only points after this sequence number
  --limit N            at most N points (default 100000)
  --json               print an array of {id, seq, time, kind, consistent}
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('points', argv, {
      'master-target': { type: 'string' }, machine: { type: 'string' }, disk: { type: 'string' }, json: { type: 'boolean' }, ...AUTH_OPTIONS,
      since: { type: 'string' }, limit: { type: 'string' },
    });
    const query = new URLSearchParams();
    for (const name of ['since', 'limit'] as const) {
      const v = optional(values, name);
      if (v === undefined) continue;
      if (!/^\d+$/.test(v)) throw new UsageError(`points: --${name} must be a whole number`, { hint: name === 'since' ? 'give a sequence number from an earlier listing' : 'e.g. --limit 50' });
      query.set(name, v);
    }
    const url = parseUrl('master target', required('points', values, 'master-target'));
    const machine = checkName('machine', required('points', values, 'machine'));
    const disk = checkName('disk', required('points', values, 'disk'));
    const qs = query.size ? `?${query}` : '';
    const r = await getJson<{ points: Point[]; truncated?: boolean }>(url, `/v1/machines/${machine}/disks/${disk}/points${qs}`, await peerAuth(url, values, env));
    const points = r.points.map((p) => ({ id: p.id, seq: p.seq, time: p.time, kind: p.kind, consistent: p.consistent, ...(p.name ? { name: p.name } : {}) }));
    if (values.json) {
      process.stdout.write(JSON.stringify(points, null, 2) + '\n');
      return 0;
    }
    if (points.length === 0) {
      process.stdout.write(`no recovery points yet for ${machine}/${disk}\n`);
      return 0;
    }
    process.stdout.write(table(['ID', 'TIME', 'KIND', 'CONSISTENT', 'NAME'], compact(points).map((g) => [
      g.first.id === g.last.id ? g.first.id : `${g.first.id}-${g.last.id}`,
      g.first.time === g.last.time ? g.first.time : `${g.first.time} .. ${g.last.time}`,
      g.first.kind, g.first.consistent ? 'yes' : 'no', g.first.name ?? (g.count > 1 ? `${g.count} write boundaries` : ''),
    ])));
    if (r.truncated) process.stdout.write(`more points follow: add --since ${points[points.length - 1].seq}\n`);
    return 0;
  },
};
