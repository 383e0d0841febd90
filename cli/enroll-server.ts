/**
 * `--control-plane URL --key KEY --name NAME --site NAME --url URL` of the process server and
 * master target commands: enroll once, keeping the credential in `<data>/enrollment.json`.
 */
import { join } from 'node:path';
import { enrollOnce, type StoredEnrollment } from '../core/control-plane/enrollment-file.ts';
import { UsageError } from '../core/errors.ts';
import { optional, parseUrl, type Parsed } from './args.ts';

export const SERVER_ENROLLMENT_OPTIONS = {
  'control-plane': { type: 'string' }, key: { type: 'string' }, name: { type: 'string' }, site: { type: 'string' }, url: { type: 'string' },
} as const;

export const SERVER_ENROLLMENT_HELP = `  --control-plane URL     enroll with this control plane (once; the credential is kept in DIR/enrollment.json),
                          then poll its commands and report to it
  --key KEY               registration key for the first enrollment
  --name NAME             this server's name (default: the role and the listen port)
  --site NAME             its site (default primary for a process server, secondary for a master target)
  --url URL               where peers reach it (default http://HOST:PORT of --listen)
`;

/** The enrollment, or undefined without --control-plane. */
export async function enrollServer(
  command: string,
  role: 'process-server' | 'master-target',
  values: Parsed['values'],
  dataDir: string,
  listen: { host: string; port: number },
): Promise<StoredEnrollment | undefined> {
  const cp = optional(values, 'control-plane');
  if (!cp) return undefined;
  const url = parseUrl('control plane', cp);
  const { enrollment } = await enrollOnce(join(dataDir, 'enrollment.json'), url, () => {
    const key = optional(values, 'key');
    if (!key) throw new UsageError(`${command}: not enrolled yet: give --key with a registration key`, { hint: `see 'tidemark ${command} --help'` });
    const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
    return {
      registrationKey: key, role,
      name: optional(values, 'name') ?? `${role === 'process-server' ? 'ps' : 'mt'}-${listen.port}`,
      siteName: optional(values, 'site') ?? (role === 'process-server' ? 'primary' : 'secondary'),
      url: parseUrl('own', optional(values, 'url') ?? `http://${host}:${listen.port}`),
      softwareVersion: '0.1.0',
    };
  });
  if (enrollment.role !== role) throw new UsageError(`${join(dataDir, 'enrollment.json')} is the enrollment of a ${enrollment.role}, not of a ${role}`);
  return enrollment;
}
