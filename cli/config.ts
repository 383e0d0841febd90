/** The one place the CLI reads the environment. Everything below takes plain values. */
import type { LogLevel } from '../core/log.ts';

export interface Environment {
  token?: string;
  logLevel: LogLevel;
}

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const level = env.TIDEMARK_LOG_LEVEL;
  return {
    token: env.TIDEMARK_TOKEN || undefined,
    logLevel: level === 'debug' || level === 'warn' || level === 'error' ? level : 'info',
  };
}
