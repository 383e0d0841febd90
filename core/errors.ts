/**
 * Error families shared by every component. Messages are lowercase and say what failed;
 * `hint` tells an operator what to do next.
 */
export class TidemarkError extends Error {
  readonly hint?: string;
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Why a frame was refused. Every reason means: do not apply, re-send. */
export type FrameFaultReason =
  | 'bad-magic'
  | 'unsupported-version'
  | 'truncated'
  | 'bad-checksum'
  | 'malformed'
  | 'too-large';

/** A frame that must not be applied: unknown version, bad checksum, truncated or malformed. */
export class FrameError extends TidemarkError {
  readonly reason: FrameFaultReason;
  constructor(reason: FrameFaultReason, message: string) {
    super(message, { hint: 'the sender should re-send the batch; if it repeats, check the link and both versions' });
    this.reason = reason;
  }
}

/** A request or setting an operator can fix. */
export class UsageError extends TidemarkError {}

/** A peer answered with an error status. */
export class RemoteError extends TidemarkError {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body?: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}
