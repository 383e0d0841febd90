import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { AUTH_HELP, AUTH_OPTIONS, peerAuth } from '../operator-identity.ts';
import { open, rename, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { getStream } from '../../core/http/client.ts';
import { checkName } from '../../core/names.ts';
import { syncDir } from '../../core/fsutil.ts';
import { UsageError } from '../../core/errors.ts';
import { parse, required, optional, parseUrl } from '../args.ts';
import type { Command } from './command.ts';

const MiB = 1024 * 1024;

export interface ExportResult {
  pointId: string;
  bytes: number;
  sha256: string;
  seconds: number;
}

/** Streams a disk image at a point into `out`, atomically (temporary file, fsync, rename). */
export async function exportImage(url: string, machine: string, disk: string, at: string, out: string, auth: string | { token?: string; tls?: TlsIdentity } = {}): Promise<ExportResult> {
  const started = Date.now();
  const res = await getStream(url, `/v1/machines/${machine}/disks/${disk}/image?at=${encodeURIComponent(at)}`, typeof auth === 'string' ? { token: auth } : auth);
  const tmp = `${out}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      let done = 0;
      while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
      bytes += chunk.length;
    }
    const expected = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(expected) && expected !== bytes) throw new Error(`export ended early: ${bytes} of ${expected} bytes`);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, out);
  await syncDir(dirname(out));
  return { pointId: res.headers.get('x-tidemark-point') ?? '?', bytes, sha256: hash.digest('hex'), seconds: (Date.now() - started) / 1000 };
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'write a disk as it was at a recovery point to a raw image file',
  help: `Usage: tidemark export --master-target URL --machine NAME --disk DISK --at latest|POINT_ID|ISO_TIME --out FILE

Writes the disk at the chosen recovery point to FILE (raw image). The file appears only
when complete. ISO_TIME picks the newest consistent point at or before that time.

  --master-target URL  e.g. http://dr-site:7402
  --machine NAME       the protected machine
  --disk DISK          disk0, disk1, ...
  --at POINT           latest, a point id from 'tidemark points', or a time like 2026-11-26T10:00:00Z
  --out FILE           the image to write
${AUTH_HELP}
`,
  async run(argv, env) {
    const { values } = parse('export', argv, {
      'master-target': { type: 'string' }, machine: { type: 'string' }, disk: { type: 'string' }, at: { type: 'string' }, out: { type: 'string' }, ...AUTH_OPTIONS,
    });
    const url = parseUrl('master target', required('export', values, 'master-target'));
    const machine = checkName('machine', required('export', values, 'machine'));
    const disk = checkName('disk', required('export', values, 'disk'));
    const at = required('export', values, 'at');
    if (!(at === 'latest' || /^\d+$/.test(at) || !Number.isNaN(Date.parse(at)))) {
      throw new UsageError(`export: --at ${JSON.stringify(at)} is not latest, a point id or an ISO time`, { hint: "list points with 'tidemark points'" });
    }
    const r = await exportImage(url, machine, disk, at, required('export', values, 'out'), await peerAuth(url, values, env));
    process.stdout.write(`exported ${machine}/${disk} at point ${r.pointId}: ${(r.bytes / MiB).toFixed(1)} MiB in ${r.seconds.toFixed(2)} s, sha256 ${r.sha256}\n`);
    return 0;
  },
};
