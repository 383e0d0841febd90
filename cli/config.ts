/** The one place the CLI reads the environment. Everything below takes plain values. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { LogLevel } from '../core/log.ts';
import { UsageError } from '../core/errors.ts';

/**
 * Options the process server and master target also take from the environment, each as
 * TIDEMARK_<OPTION> (`--spool-max-bytes` from TIDEMARK_SPOOL_MAX_BYTES): container images are
 * configured this way. A flag given on the command line wins.
 */
export const SERVER_ENVIRONMENT_OPTIONS = [
  'data', 'listen', 'master-target', 'spool-max-bytes-per-disk', 'max-spool-bytes', 'spool-max-bytes', 'bandwidth', 'agent-dir', 'retention', 'retention-full', 'nbd', 'scratch-bytes', 'keep-free', 'journal-max',
  'control-plane', 'key', 'name', 'site', 'url',
] as const;

export type ServerEnvironmentOption = (typeof SERVER_ENVIRONMENT_OPTIONS)[number];

export function environmentName(option: ServerEnvironmentOption): string {
  return `TIDEMARK_${option.toUpperCase().replaceAll('-', '_')}`;
}

export const SERVER_ENVIRONMENT_HELP = `Every option above may also be set in the environment as TIDEMARK_<OPTION> (TIDEMARK_DATA,
TIDEMARK_LISTEN, TIDEMARK_MASTER_TARGET, TIDEMARK_TOKEN, ...); a flag given here wins.
`;

export interface Environment {
  token?: string;
  logLevel: LogLevel;
  /** TIDEMARK_IDENTITY: the operator certificate folder for https:// servers. */
  identityDir?: string;
  /** Where per-user settings live: $XDG_CONFIG_HOME/tidemark or ~/.config/tidemark. */
  configDir: string;
  /** Server options set in the environment, keyed by option name; the commands lay flags over them. */
  serverOptions: Partial<Record<ServerEnvironmentOption, string>>;
  /**
   * TIDEMARK_CERTIFICATE_RENEW_FRACTION: enrolled components renew their certificate when less
   * than this share of its lifetime is left (0 < f < 1). @default DEFAULT_RENEW_FRACTION
   */
  certificateRenewFraction?: number;
  /** TIDEMARK_REVOCATION_POLL_SECONDS: how often servers fetch the vault's revocation list. @default 30 */
  revocationPollSeconds?: number;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const level = env.TIDEMARK_LOG_LEVEL;
  const serverOptions: Partial<Record<ServerEnvironmentOption, string>> = {};
  for (const option of SERVER_ENVIRONMENT_OPTIONS) {
    const v = env[environmentName(option)];
    if (v) serverOptions[option] = v;
  }
  const fraction = env.TIDEMARK_CERTIFICATE_RENEW_FRACTION ? Number(env.TIDEMARK_CERTIFICATE_RENEW_FRACTION) : undefined;
  if (fraction !== undefined && !(fraction > 0 && fraction < 1)) throw new UsageError('TIDEMARK_CERTIFICATE_RENEW_FRACTION must be a number between 0 and 1', { hint: 'e.g. 0.25: renew with a quarter of the lifetime left' });
  const pollSeconds = env.TIDEMARK_REVOCATION_POLL_SECONDS ? Number(env.TIDEMARK_REVOCATION_POLL_SECONDS) : undefined;
  if (pollSeconds !== undefined && !(pollSeconds >= 1 && pollSeconds <= 86_400)) throw new UsageError('TIDEMARK_REVOCATION_POLL_SECONDS must be from 1 to 86400');
  return {
    ...(fraction !== undefined ? { certificateRenewFraction: fraction } : {}),
    ...(pollSeconds !== undefined ? { revocationPollSeconds: pollSeconds } : {}),
    token: env.TIDEMARK_TOKEN || undefined,
    identityDir: env.TIDEMARK_IDENTITY || undefined,
    configDir: join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'tidemark'),
    logLevel: level === 'debug' || level === 'warn' || level === 'error' ? level : 'info',
    serverOptions,
  };
}
