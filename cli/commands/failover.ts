import { tlsFetch } from '../../core/http/tls-client.ts';
import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { TidemarkError, UsageError } from '../../core/errors.ts';
import { PeerUnreachableError, remoteError, requestJson } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { optional, parse, parseUrl, required } from '../args.ts';
import type { Command } from './command.ts';

const MiB = 1024 * 1024;

interface DiskReport {
  disk: string;
  point: { id: string; seq: number; time: string; kind: string };
  view?: { id: string; uri: string };
  image?: { path: string; format: string; sizeBytes: number; seconds: number };
}

interface Report {
  machine: string;
  mode: 'test' | 'live';
  pointTime: string;
  pointAgeSeconds: number;
  disks: DiskReport[];
  replica?: { name: string; consoleLogPath: string };
  seconds: number;
}

function printReport(r: Report): void {
  const w = (s: string) => process.stdout.write(s);
  w(`${r.mode === 'test' ? 'test failover' : 'failover'} of ${r.machine} at ${r.pointTime} (point age ${formatAge(r.pointAgeSeconds)}) done in ${r.seconds.toFixed(2)} s\n`);
  for (const d of r.disks) {
    if (d.view) w(`  ${d.disk}: point ${d.point.id} (${d.point.kind}, ${d.point.time}) writable view ${d.view.id} ${d.view.uri}\n`);
    if (d.image) w(`  ${d.disk}: point ${d.point.id} (${d.point.kind}, ${d.point.time}) -> ${d.image.path} (${d.image.format}, ${(d.image.sizeBytes / MiB).toFixed(0)} MiB in ${d.image.seconds.toFixed(2)} s)\n`);
  }
  if (r.replica) w(`  replica machine ${r.replica.name} started isolated; console: ${r.replica.consoleLogPath}\n`);
  if (r.mode === 'test') w(`end the drill with: tidemark cleanup --machine ${r.machine}\n`);
  else w(`replication of ${r.machine} is stopped; the master target refuses its batches until it is re-protected\n`);
}

function formatAge(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Reads the live failover's lines of JSON, printing progress; returns the report. */
async function readLive(res: Response, write: (s: string) => void): Promise<Report> {
  const decoder = new TextDecoder();
  let buf = '';
  let report: Report | undefined;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const e = JSON.parse(line) as { event: string; disk?: string; doneBytes?: number; totalBytes?: number; seconds?: number; report?: Report; error?: string; hint?: string };
      if (e.event === 'progress') {
        const pct = e.totalBytes ? Math.floor((100 * e.doneBytes!) / e.totalBytes) : 100;
        write(`${e.disk}: ${String(pct).padStart(3)}%  ${(e.doneBytes! / MiB).toFixed(0)} of ${(e.totalBytes! / MiB).toFixed(0)} MiB  ${(e.doneBytes! / MiB / Math.max(0.001, e.seconds!)).toFixed(0)} MiB/s\n`);
      } else if (e.event === 'done') report = e.report;
      else if (e.event === 'error') throw new TidemarkError(`failover failed: ${e.error}`, { hint: e.hint ?? 'see the master target log' });
    }
  }
  if (!report) throw new TidemarkError('failover ended without a report', { hint: 'see the master target log' });
  return report;
}

export const failoverCommand: Command = {
  name: 'failover',
  summary: 'test failover (views, optional boot) or failover (materialise, stop replication) of a machine',
  help: `Usage: tidemark failover --master-target URL --machine M --at POINT --test|--live [--boot]

--test opens writable views of every disk of the machine at one point (per disk, the newest
point at or before the chosen time) without copying, and with --boot starts the replica
machine isolated (no route to production) through the hypervisor adapter. Replication goes
on. End it with 'tidemark cleanup'.

--live stops replication of the machine (the master target refuses its batches until it is
re-protected) and writes every disk at the point to a new raw image, with progress.

  --master-target URL  e.g. http://dr-site:7402
  --machine M          the protected machine
  --at POINT           latest, a point id (of the machine's first disk), or an ISO time
  --test | --live      drill, or real failover
  --boot               (with --test) boot the replica machine
  --json               print the report as JSON
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('failover', argv, {
      'master-target': { type: 'string' }, machine: { type: 'string' }, at: { type: 'string' }, test: { type: 'boolean' }, live: { type: 'boolean' },
      boot: { type: 'boolean' }, json: { type: 'boolean' }, ...AUTH_OPTIONS,
    });
    const url = parseUrl('master target', required('failover', values, 'master-target'));
    const auth = await peerAuth(url, values, env);
    const machine = checkName('machine', required('failover', values, 'machine'));
    const at = required('failover', values, 'at');
    if (values.test === values.live) throw new UsageError('failover: give exactly one of --test and --live', { hint: "see 'tidemark failover --help'" });
    if (values.boot && !values.test) throw new UsageError('failover: --boot goes with --test', { hint: 'a live failover leaves images for the hypervisor to start' });
    let report: Report;
    if (values.test) {
      const r = await requestJson<Report>(url, 'POST', `/v1/machines/${machine}/failover`, { at, mode: 'test', boot: values.boot === true }, { ...auth, timeoutMs: 300_000 });
      if (r.status !== 201) throw remoteError(url, r);
      report = r.body;
    } else {
      let res: Response;
      try {
        const init = {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}) },
          body: JSON.stringify({ at, mode: 'live' }),
        };
        res = auth.tls ? await tlsFetch(`${url}/v1/machines/${machine}/failover`, init, auth.tls) : await fetch(`${url}/v1/machines/${machine}/failover`, init);
      } catch (cause) {
        throw new PeerUnreachableError(`cannot reach ${url}`, { cause, hint: 'check the URL and that the server is running' });
      }
      if (!res.ok) throw remoteError(url, { status: res.status, body: await res.json().catch(() => ({})) });
      report = await readLive(res, (s) => process.stderr.write(s));
    }
    if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else printReport(report);
    return 0;
  },
};
