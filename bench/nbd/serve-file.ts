/**
 * Serves one file as export `disk0` on 127.0.0.1 (port 0) in its own process, as a deployed
 * server would run, and prints the port. Used by bench/nbd/run.ts; ends on SIGTERM.
 *
 *   node --import tsx bench/nbd/serve-file.ts FILE [syncMaxBytes]
 */
import { createNbdServer, fixedExports, openFileExport } from '../../core/nbd/index.ts';

const [path, syncArg] = process.argv.slice(2);
if (!path) {
  console.error('usage: serve-file.ts FILE [syncMaxBytes]');
  process.exit(2);
}
const disk = await openFileExport(path, {
  name: 'disk0',
  syncMaxBytes: syncArg === undefined ? undefined : Number(syncArg),
});
const server = createNbdServer({ exports: fixedExports([disk]) });
const { port } = await server.listen('127.0.0.1', 0);
process.stdout.write(`${port}\n`);
process.on('SIGTERM', () => {
  void server
    .close()
    .then(() => disk.close())
    .finally(() => process.exit(0));
});
