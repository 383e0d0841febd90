/**
 * NBD server library: serve disks to QEMU, qemu-io, nbdcopy or any NBD client (docs/nbd.md).
 *
 * @example
 * import { createNbdServer, fixedExports, openFileExport } from '../core/nbd/index.ts';
 * const disk = await openFileExport('/srv/disk0.img', { name: 'disk0' });
 * const server = createNbdServer({ exports: fixedExports([disk]) });
 * await server.listen('127.0.0.1', 10809);
 */
export {
  createNbdServer,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION,
  DEFAULT_MAX_REQUEST_BYTES,
} from './server.ts';
export type { NbdServer, NbdServerOptions } from './server.ts';
export { fixedExports } from './export.ts';
export type { MaybePromise, NbdExport, NbdExportEntry, NbdExportSource } from './export.ts';
export { NbdError, nbdErrnoOf } from './nbd-error.ts';
export { NbdErrno } from './protocol.ts';
export { silentLog } from './log.ts';
export type { NbdLog } from './log.ts';
export { DEFAULT_SYNC_MAX_BYTES, openFileExport } from './file-export.ts';
export type { FileExport, FileExportOptions } from './file-export.ts';
