/**
 * How a backend chooses the error a client sees. Anything else a backend throws becomes EIO,
 * except host errors whose meaning the protocol names (no space, not permitted, invalid).
 */
import { TidemarkError } from '../errors.ts';
import { NbdErrno } from './protocol.ts';

/**
 * An error to send to the client as the reply's error value.
 *
 * @example
 * if (offset % 512 !== 0) throw new NbdError(NbdErrno.EINVAL, 'unaligned write');
 */
export class NbdError extends TidemarkError {
  readonly errno: NbdErrno;
  constructor(errno: NbdErrno, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.errno = errno;
  }
}

/** Host error codes (Node's `err.code`) that have their own value in the protocol. */
const HOST_CODES: Record<string, NbdErrno> = {
  EPERM: NbdErrno.EPERM,
  EACCES: NbdErrno.EPERM,
  EROFS: NbdErrno.EPERM,
  EINVAL: NbdErrno.EINVAL,
  ENOSPC: NbdErrno.ENOSPC,
  EDQUOT: NbdErrno.ENOSPC,
  EFBIG: NbdErrno.ENOSPC,
  ENOMEM: NbdErrno.ENOMEM,
};

/** The protocol error value for anything a backend threw or rejected with. */
export function nbdErrnoOf(err: unknown): NbdErrno {
  if (err instanceof NbdError) return err.errno;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in HOST_CODES) return HOST_CODES[code];
  return NbdErrno.EIO;
}
