import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeSampleDisk, sha256File } from '../../cli/demo/sample-disk.ts';
import { TestStack } from '../helpers/stack.ts';
import { startTidemark, runTidemark, waitUntil } from '../helpers/tidemark-process.ts';

test('a bookmark in scan mode starts a scan at once and ends it with the named point', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-scanbm-'));
  const env = { TIDEMARK_TOKEN: randomBytes(8).toString('hex') };
  const stack = await new TestStack(dir, env).start();
  const disk = join(dir, 'disk.img');
  await makeSampleDisk(disk, 32 * 1024 * 1024, 5);
  // A long interval: only the bookmark can cause the second scan.
  const agent = startTidemark(['agent', '--state', join(dir, 'agent'), '--process-server', stack.psUrl, '--machine', 'bm', '--disk', disk, '--mode', 'scan', '--interval', '1h'], env);
  try {
    await waitUntil('the first point', async () => ((await stack.points('bm')).length ? true : undefined), 60_000);
    const started = Date.now();
    const r = await runTidemark(['bookmark', '--process-server', stack.psUrl, '--machine', 'bm', 'nightly'], env);
    assert.equal(r.code, 0, r.stderr + agent.stderr());
    assert.ok(Date.now() - started < 30_000, 'the bookmark does not wait for the next interval');
    const points = await stack.points('bm');
    const mark = points.find((p) => p.kind === 'bookmark')!;
    assert.equal(mark.name, 'nightly');
    assert.match(r.stdout, new RegExp(`disk0\\s+${mark.seq}\\s`));
    assert.equal(await stack.imageHash('bm', mark.id), await sha256File(disk));
  } finally {
    await agent.stop();
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
