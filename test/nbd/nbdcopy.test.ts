/**
 * nbdcopy (libnbd) copies whole images in and out over several connections at once; the
 * files must match byte for byte (sha256).
 */
import assert from 'node:assert/strict';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { describeRun, patternBytes, run, scratchDir, sha256, sha256File, spyExport, type SpyCall } from './helpers.ts';
import { createNbdServer, fixedExports, openFileExport } from '../../core/nbd/index.ts';
import type { FileExport, NbdServer } from '../../core/nbd/index.ts';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB + 4096;

describe('nbdcopy through the server', { timeout: 120_000 }, () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let source: string;
  let target: string;
  let file: FileExport;
  let server: NbdServer;
  let calls: SpyCall[];
  let uri: string;

  before(async () => {
    scratch = await scratchDir();
    // The source is sparse: data in a few ranges, holes elsewhere, so nbdcopy zeroes the
    // holes on the target (which starts full of other bytes) instead of writing them.
    source = join(scratch.dir, 'source.img');
    const src = await open(source, 'w');
    await src.truncate(SIZE);
    await src.write(patternBytes(9 * MiB, 1), 0, 9 * MiB, 0);
    await src.write(patternBytes(3 * MiB + 100, 2), 0, 3 * MiB + 100, 20 * MiB);
    await src.write(patternBytes(4096, 3), 0, 4096, SIZE - 4096);
    await src.close();
    target = join(scratch.dir, 'target.img');
    await writeFile(target, patternBytes(SIZE, 99));
    file = await openFileExport(target, { name: 'disk0' });
    const spy = spyExport(file);
    calls = spy.calls;
    server = createNbdServer({ exports: fixedExports([spy.exp]) });
    const { port } = await server.listen('127.0.0.1', 0);
    uri = `nbd://127.0.0.1:${port}/disk0`;
  });

  after(async () => {
    await server.close();
    await file.close();
    await scratch.cleanup();
  });

  test('copy in: file to nbd:// leaves the export equal to the source', { timeout: 60_000 }, async () => {
    assert.notEqual(await sha256File(target), await sha256File(source), 'target starts different');
    const r = await run('nbdcopy', ['--flush', source, uri], 60_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(await sha256File(target), await sha256File(source));
    assert.ok(calls.some((c) => c.op === 'writeZeroes'), 'holes were sent as write zeroes');
    assert.ok(calls.some((c) => c.op === 'flush'), '--flush reached the backend');
  });

  test('copy out: nbd:// to file gives the same bytes', { timeout: 60_000 }, async () => {
    const out = join(scratch.dir, 'out.img');
    const r = await run('nbdcopy', [uri, out], 60_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(await sha256File(out), await sha256File(source));
  });

  test('copy out with 32 MiB requests on one connection', { timeout: 60_000 }, async () => {
    calls.length = 0;
    const out = join(scratch.dir, 'out32.img');
    const r = await run('nbdcopy', ['--connections=1', '--request-size=33554432', uri, out], 60_000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(sha256(await readFile(out)), await sha256File(source));
    assert.ok(calls.some((c) => c.op === 'read' && c.length === 32 * MiB), 'a 32 MiB read was served');
  });
});
