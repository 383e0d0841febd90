/**
 * The structured log the NBD server writes to: a message saying what happened and fields
 * naming the connection and export. Export contents never reach it.
 */
export interface NbdLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Drops everything; the default, so a library user opts in to logging. */
export const silentLog: NbdLog = {
  info() {},
  warn() {},
};
