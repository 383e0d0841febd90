import { UsageError } from './errors.ts';

/** Machine and disk names: safe as path segments and URL segments, 1–64 characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidName(s: string): boolean {
  return NAME.test(s) && s !== '.' && s !== '..';
}

/** Throws a UsageError naming `what` unless `s` is a valid machine or disk name. */
export function checkName(what: string, s: string): string {
  if (!isValidName(s)) {
    throw new UsageError(`invalid ${what} name ${JSON.stringify(s)}`, {
      hint: 'use 1-64 letters, digits, dot, dash or underscore, starting with a letter or digit',
    });
  }
  return s;
}

/** The name of the n-th disk given to an agent: disk0, disk1, ... */
export function diskName(index: number): string {
  return `disk${index}`;
}
