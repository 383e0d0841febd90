/** Argument parsing on top of node:util's parseArgs, with errors that say what to do. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../core/errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(command: string, argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}`, { hint: `see 'tidemark ${command} --help'` });
  }
}

export function required(command: string, values: Parsed['values'], name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`${command}: --${name} is required`, { hint: `see 'tidemark ${command} --help'` });
  return v;
}

export function optional(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses a duration: plain seconds, or a number with s, m, h or d. */
export function parseDurationSeconds(what: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(s)}`, { hint: 'use seconds (30) or a number with s, m, h or d (90s, 15m, 24h, 7d)' });
  const n = Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 } as const)[(m[2] ?? 's') as 's'];
  if (!(n > 0)) throw new UsageError(`${what} must be more than zero`);
  return n;
}

/** Parses a size: bytes, or a number with K, M, G or T (powers of 1024). */
export function parseBytes(what: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]i?B?)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(s)}`, { hint: 'use bytes or a number with K, M, G or T, e.g. 512M' });
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}

/** Validates an http(s) URL given on the command line. */
export function parseUrl(what: string, s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UsageError(`invalid ${what} URL ${JSON.stringify(s)}`, { hint: 'use http://HOST:PORT' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} URL must be http:// or https://`);
  return s.replace(/\/+$/, '');
}
