/** The body of `POST /v1/push-installs` (docs/agent-install.md, "Push install"). */
import { z } from 'zod';

const word = (what: string) => z.string().min(1).max(256).refine((s) => !/[\s\0]/.test(s) && !s.startsWith('-'), `${what} must not be empty, hold white space or start with '-'`);

export const PushInstallRequest = z.object({
  host: word('host'),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, 'a user name such as root or deploy'),
  /** The private key's text (OpenSSH or PEM, no passphrase); kept only in a 0600 file for the push's duration. */
  privateKey: z.string().min(32).max(16_384).refine((s) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(s), 'not a private key (expected -----BEGIN ... PRIVATE KEY-----)'),
  /** known_hosts lines for this host; when given, only they are trusted. */
  knownHosts: z.string().max(65_536).optional(),
  /** Learn the key of a host seen for the first time (trust on first use); a changed key is still refused. */
  acceptNewHostKey: z.boolean().default(false),
  /** Run install.sh through `sudo -n` (for a user other than root). */
  sudo: z.boolean().default(false),
  install: z.object({
    controlPlaneUrl: z.string().url().refine((s) => /^https?:\/\//.test(s), 'an http:// or https:// URL'),
    registrationKey: z.string().min(1).max(512),
    disks: z.array(z.string().regex(/^\/\S*$/, 'an absolute path without white space')).min(1).max(64),
    machine: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/).optional(),
    site: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/).optional(),
    mode: z.enum(['scan', 'tap']).optional(),
    interval: z.string().regex(/^\d+(\.\d+)?[smhd]?$/).optional(),
    nbd: z.string().max(300).optional(),
    freezeCmd: z.string().max(1000).optional(),
    thawCmd: z.string().max(1000).optional(),
    /** install.sh --root on the remote host (staging, tests). */
    root: z.string().regex(/^\/\S*$/).optional(),
    /** install.sh --node on the remote host. */
    node: z.string().regex(/^\/\S*$/).optional(),
  }),
});
export type PushInstallRequest = z.infer<typeof PushInstallRequest>;

/** install.sh's arguments (the key goes on standard input, never on the command line). */
export function installArguments(i: PushInstallRequest['install'], remoteDir: string): string[] {
  const args = ['--bundle', `${remoteDir}/tidemark-agent.mjs`, '--control-plane', i.controlPlaneUrl, '--key-file', '-'];
  for (const d of i.disks) args.push('--disk', d);
  const optional: Array<[string, string | undefined]> = [
    ['--machine', i.machine], ['--site', i.site], ['--mode', i.mode], ['--interval', i.interval], ['--nbd', i.nbd],
    ['--freeze-cmd', i.freezeCmd], ['--thaw-cmd', i.thawCmd], ['--root', i.root], ['--node', i.node],
  ];
  for (const [flag, value] of optional) if (value !== undefined) args.push(flag, value);
  return args;
}
