/**
 * The Lambda deployable's configuration: the only place that reads the environment. CDK
 * (`infra/control-plane-functions.ts`) sets these variables.
 *
 * | variable | meaning |
 * |---|---|
 * | `TIDEMARK_BUCKET` | bucket holding the control plane's state (required) |
 * | `TIDEMARK_KEY_PREFIX` | prefix of every object key (default empty) |
 * | `TIDEMARK_SITE_EVENTS_QUEUE_URL` | URL of the site-events queue (required) |
 * | `TIDEMARK_SITE_QUEUE_PREFIX` | name prefix of per-site command queues (required) |
 * | `TIDEMARK_MAX_RECEIVE_COUNT` | receives before a site command dead-letters (default 5) |
 * | `TIDEMARK_ADMIN_TOKEN_SHA256` | hex sha256 of the bootstrap admin token (optional) |
 * | `TIDEMARK_LOG_LEVEL` | debug, info, warn or error (default info) |
 * | `TIDEMARK_AWS_ENDPOINT` | S3/SQS endpoint override, for tests against a local server |
 * | `TIDEMARK_CERTIFICATE_VALIDITY_DAYS` | lifetime of component and operator certificates (default 365) |
 */
import { UsageError } from '../core/errors.ts';
import type { LogLevel } from '../core/log.ts';

export interface LambdaConfig {
  readonly bucket: string;
  readonly keyPrefix: string;
  readonly siteEventsQueueUrl: string;
  readonly siteQueuePrefix: string;
  readonly maxReceiveCount: number;
  readonly bootstrapAdminTokenSha256: string | null;
  readonly logLevel: LogLevel;
  readonly awsEndpoint: string | null;
  readonly certificateValidityDays: number;
}

export const ENV = {
  bucket: 'TIDEMARK_BUCKET',
  keyPrefix: 'TIDEMARK_KEY_PREFIX',
  siteEventsQueueUrl: 'TIDEMARK_SITE_EVENTS_QUEUE_URL',
  siteQueuePrefix: 'TIDEMARK_SITE_QUEUE_PREFIX',
  maxReceiveCount: 'TIDEMARK_MAX_RECEIVE_COUNT',
  adminTokenSha256: 'TIDEMARK_ADMIN_TOKEN_SHA256',
  logLevel: 'TIDEMARK_LOG_LEVEL',
  awsEndpoint: 'TIDEMARK_AWS_ENDPOINT',
  certificateValidityDays: 'TIDEMARK_CERTIFICATE_VALIDITY_DAYS',
} as const;

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new UsageError(`environment variable ${name} is not set`, { hint: 'deploy with the CDK app in infra/, which sets it' });
  return v;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): LambdaConfig {
  const maxReceiveCount = Number(env[ENV.maxReceiveCount] ?? 5);
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1 || maxReceiveCount > 1000) {
    throw new UsageError(`${ENV.maxReceiveCount} must be an integer from 1 to 1000`);
  }
  const hash = env[ENV.adminTokenSha256]?.trim() || null;
  if (hash !== null && !/^[0-9a-f]{64}$/.test(hash)) throw new UsageError(`${ENV.adminTokenSha256} must be 64 lowercase hex digits`);
  const certificateValidityDays = Number(env[ENV.certificateValidityDays] ?? 365);
  if (!Number.isInteger(certificateValidityDays) || certificateValidityDays < 1 || certificateValidityDays > 825) {
    throw new UsageError(`${ENV.certificateValidityDays} must be an integer from 1 to 825`);
  }
  const level = (env[ENV.logLevel] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`${ENV.logLevel} must be debug, info, warn or error`);
  return {
    bucket: required(env, ENV.bucket),
    keyPrefix: env[ENV.keyPrefix] ?? '',
    siteEventsQueueUrl: required(env, ENV.siteEventsQueueUrl),
    siteQueuePrefix: required(env, ENV.siteQueuePrefix),
    maxReceiveCount,
    bootstrapAdminTokenSha256: hash,
    logLevel: level,
    awsEndpoint: env[ENV.awsEndpoint]?.trim() || null,
    certificateValidityDays,
  };
}
