import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDurationSeconds, parseBytes, parseUrl } from '../../cli/args.ts';
import { parseListen } from '../../core/http/serve.ts';
import { runTidemark } from '../helpers/tidemark-process.ts';

test('durations, sizes, URLs and listen addresses parse or say what is wrong', () => {
  assert.equal(parseDurationSeconds('interval', '30'), 30);
  assert.equal(parseDurationSeconds('retention', '24h'), 86400);
  assert.equal(parseDurationSeconds('retention', '90m'), 5400);
  assert.throws(() => parseDurationSeconds('interval', 'soon'), /invalid interval "soon"/);
  assert.throws(() => parseDurationSeconds('interval', '0'), /more than zero/);
  assert.equal(parseBytes('max-log-bytes', '2M'), 2 * 1024 * 1024);
  assert.equal(parseBytes('max-spool-bytes', '8G'), 8 * 1024 ** 3);
  assert.throws(() => parseBytes('max-log-bytes', 'lots'), /invalid max-log-bytes/);
  assert.equal(parseUrl('process server', 'http://127.0.0.1:7401/'), 'http://127.0.0.1:7401');
  assert.throws(() => parseUrl('process server', 'ftp://x'), /must be http/);
  assert.deepEqual(parseListen('127.0.0.1:7401'), { host: '127.0.0.1', port: 7401 });
  assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
  assert.throws(() => parseListen('7401'), /invalid listen address/);
});

test('every command answers --help, and a missing option names itself with a hint', async () => {
  for (const cmd of ['up', 'demo', 'agent', 'process-server', 'master-target', 'status', 'points', 'export']) {
    const r = await runTidemark([cmd, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`Usage: tidemark ${cmd}`));
  }
  const missing = await runTidemark(['export', '--master-target', 'http://127.0.0.1:1']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--machine is required/);
  assert.match(missing.stderr, /hint: see 'tidemark export --help'/);
  const unreachable = await runTidemark(['status', '--process-server', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach http:\/\/127.0.0.1:1/);
  assert.match(unreachable.stderr, /hint:/);
  const unknown = await runTidemark(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
});

test('the per-disk spool limit has one name now; its former name still works, and both at once are refused', async () => {
  const base = ['process-server', '--data', '/nonexistent/tm-usage', '--listen', '127.0.0.1:0', '--master-target', 'http://127.0.0.1:1'];
  const help = await runTidemark(['process-server', '--help']);
  assert.match(help.stdout, /--spool-max-bytes-per-disk SIZE/);
  const both = await runTidemark([...base, '--spool-max-bytes-per-disk', '1G', '--max-spool-bytes', '1G']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /one setting, given twice/);
  const bad = await runTidemark([...base, '--spool-max-bytes-per-disk', 'lots']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid spool-max-bytes-per-disk "lots"/);
  const former = await runTidemark(base, { TIDEMARK_MAX_SPOOL_BYTES: 'lots' });
  assert.equal(former.code, 1);
  assert.match(former.stderr, /invalid max-spool-bytes "lots"/);
  // A flag wins over the environment, whichever name each uses.
  const flagWins = await runTidemark([...base, '--spool-max-bytes-per-disk', 'many'], { TIDEMARK_MAX_SPOOL_BYTES: 'lots' });
  assert.match(flagWins.stderr, /invalid spool-max-bytes-per-disk "many"/);
});
