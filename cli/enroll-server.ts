/**
 * `--control-plane URL --key KEY --name NAME --site NAME --url URL` of the process server and
 * master target commands: enroll once, keeping the credential in `<data>/enrollment.json`.
 * A server enrolled with an `https://` URL serves TLS with the certificate it was given.
 */
import { join } from 'node:path';
import { ENROLLMENT_FILE, enrollOnce, type StoredEnrollment } from '../core/control-plane/enrollment-file.ts';
import { UsageError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { optional, parseUrl, type Parsed } from './args.ts';
import { serverIdentity } from './server-tls.ts';

export const SERVER_ENROLLMENT_OPTIONS = {
  'control-plane': { type: 'string' }, key: { type: 'string' }, name: { type: 'string' }, site: { type: 'string' }, url: { type: 'string' },
} as const;

export const SERVER_ENROLLMENT_HELP = `  --control-plane URL     enroll with this control plane (once; the credential is kept in DIR/enrollment.json),
                          then poll its commands and report to it
  --key KEY               registration key for the first enrollment
  --name NAME             this server's name (default: the role and the listen port)
  --site NAME             its site (default primary for a process server, secondary for a master target)
  --url URL               where peers reach it (default http://HOST:PORT of --listen); with https://
                          it serves HTTPS with the certificate it enrolled for, and client
                          certificates of the vault are required (docs/security.md)
`;

export interface ServerEnrollment {
  enrollment: StoredEnrollment;
  /** Its certificate and the vault CA; undefined for an enrollment made before certificates. */
  identity?: TlsIdentity;
  /** The URL peers are told (as enrolled), with `https://` when it serves TLS. */
  url: string;
  /** True when it serves HTTPS with `identity` (enrolled with an https:// URL). */
  tls: boolean;
}

/**
 * The enrollment, or undefined without --control-plane. Whether the server serves TLS is
 * fixed at enrollment by its URL's scheme; a file written before URLs were kept goes by
 * --url (default http).
 */
export async function enrollServer(
  command: string,
  role: 'process-server' | 'master-target',
  values: Parsed['values'],
  dataDir: string,
  listen: { host: string; port: number },
  log: Logger,
): Promise<ServerEnrollment | undefined> {
  const cp = optional(values, 'control-plane');
  const given = optional(values, 'url') && parseUrl('own', optional(values, 'url')!);
  if (!cp) {
    if (given?.startsWith('https:')) {
      throw new UsageError(`${command}: an https:// --url needs a certificate, which enrollment gives`, {
        hint: 'give --control-plane and --key too (TIDEMARK_CONTROL_PLANE, TIDEMARK_KEY), or an http:// URL with a shared --token for a lab',
      });
    }
    return undefined;
  }
  const url = parseUrl('control plane', cp);
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  const path = join(dataDir, ENROLLMENT_FILE);
  const { enrollment } = await enrollOnce(path, url, () => {
    const key = optional(values, 'key');
    if (!key) throw new UsageError(`${command}: not enrolled yet: give --key with a registration key`, { hint: `see 'tidemark ${command} --help'` });
    return {
      registrationKey: key, role,
      name: optional(values, 'name') ?? `${role === 'process-server' ? 'ps' : 'mt'}-${listen.port}`,
      siteName: optional(values, 'site') ?? (role === 'process-server' ? 'primary' : 'secondary'),
      url: given ?? `http://${host}:${listen.port}`,
      softwareVersion: '0.1.0',
    };
  });
  if (enrollment.role !== role) throw new UsageError(`${path} is the enrollment of a ${enrollment.role}, not of a ${role}`);
  const own = enrollment.url ?? given ?? `http://${host}:${listen.port}`;
  if (given && given !== own) log.warn('enrolled with another URL: peers are told that one, and it decides TLS', { enrolledUrl: own, url: given, enrollment: path });
  const identity = await serverIdentity(dataDir, enrollment);
  const tls = own.startsWith('https:');
  if (tls && !identity) {
    throw new UsageError(`${command}: ${path} was enrolled before certificates existed, so it cannot serve ${own}`, {
      hint: 'move enrollment.json away and enroll again with a registration key, or use an http:// URL',
    });
  }
  return { enrollment, identity, url: own, tls };
}
