import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEnvironment, environmentName } from '../../cli/config.ts';
import { startTidemark, runTidemark } from '../helpers/tidemark-process.ts';
import { freePort } from '../helpers/ports.ts';

// Starting the CLI through tsx takes seconds, and far longer on a loaded machine.
const STARTUP_MS = 120_000;

test('server options come from TIDEMARK_<OPTION> when no flag gives them', () => {
  assert.equal(environmentName('max-spool-bytes'), 'TIDEMARK_MAX_SPOOL_BYTES');
  const env = readEnvironment({
    TIDEMARK_DATA: '/data', TIDEMARK_MASTER_TARGET: 'http://mt:7402', TIDEMARK_RETENTION_FULL: '2h', TIDEMARK_NBD: '', OTHER: 'x',
    TIDEMARK_SPOOL_MAX_BYTES: '20G', TIDEMARK_BANDWIDTH: '08:00-18:00=10MB/s', TIDEMARK_AGENT_DIR: '/opt/agent',
  });
  assert.deepEqual(env.serverOptions, {
    data: '/data', 'master-target': 'http://mt:7402', 'retention-full': '2h', 'spool-max-bytes': '20G', bandwidth: '08:00-18:00=10MB/s', 'agent-dir': '/opt/agent',
  });
});

test('certificate renewal and revocation polling are set in the environment, and nonsense is refused', () => {
  const env = readEnvironment({ TIDEMARK_CERTIFICATE_RENEW_FRACTION: '0.5', TIDEMARK_REVOCATION_POLL_SECONDS: '5' });
  assert.equal(env.certificateRenewFraction, 0.5);
  assert.equal(env.revocationPollSeconds, 5);
  assert.equal(readEnvironment({}).certificateRenewFraction, undefined, 'the default is the renewal loop\'s');
  assert.throws(() => readEnvironment({ TIDEMARK_CERTIFICATE_RENEW_FRACTION: '1.5' }), /between 0 and 1/);
  assert.throws(() => readEnvironment({ TIDEMARK_REVOCATION_POLL_SECONDS: '0' }), /from 1 to 86400/);
});

test('a master target and a process server start from their environment alone; a flag wins over it', { timeout: 240_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-env-'));
  const mtPort = await freePort();
  const mt = startTidemark(['master-target'], { TIDEMARK_DATA: join(dir, 'mt'), TIDEMARK_LISTEN: `127.0.0.1:${mtPort}`, TIDEMARK_RETENTION: '2h', TIDEMARK_TOKEN: 't0k' });
  const psPort = await freePort();
  const ps = startTidemark(['process-server', '--listen', `127.0.0.1:${psPort}`], {
    TIDEMARK_DATA: join(dir, 'ps'), TIDEMARK_LISTEN: '127.0.0.1:1', TIDEMARK_MASTER_TARGET: `http://127.0.0.1:${mtPort}`, TIDEMARK_TOKEN: 't0k',
  });
  try {
    await mt.waitFor(new RegExp(`master target listening on http://127.0.0.1:${mtPort}`), STARTUP_MS);
    await ps.waitFor(new RegExp(`process server listening on http://127.0.0.1:${psPort}`), STARTUP_MS);
    assert.ok((await stat(join(dir, 'mt'))).isDirectory());
    assert.ok((await stat(join(dir, 'ps'))).isDirectory());
    const status = await runTidemark(['status', '--process-server', `http://127.0.0.1:${psPort}`], { TIDEMARK_TOKEN: 't0k' });
    assert.equal(status.code, 0, status.stderr);
    const bad = await runTidemark(['master-target', '--listen', '127.0.0.1:0'], { TIDEMARK_DATA: join(dir, 'mt2'), TIDEMARK_RETENTION: 'soon' });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid retention "soon"/);
    const badBandwidth = await runTidemark(['process-server', '--data', join(dir, 'ps3'), '--listen', '127.0.0.1:0', '--master-target', `http://127.0.0.1:${mtPort}`], { TIDEMARK_BANDWIDTH: 'plenty' });
    assert.equal(badBandwidth.code, 1, 'TIDEMARK_BANDWIDTH is read');
    assert.match(badBandwidth.stderr, /plenty/);
    const missing = await runTidemark(['process-server', '--data', join(dir, 'ps2'), '--listen', '127.0.0.1:0']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--master-target is required/);
  } finally {
    await ps.stop();
    await mt.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
