import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, open, stat, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, verifyFrame, RecordType } from '../../core/wire/frame.ts';
import { StreamSpool } from '../../process-server/spool.ts';

before(loadHashing);

function frame(firstSeq: number, n = 1, bytes = 4096): Buffer {
  return encodeFrame({
    machine: 'm1', disk: 'disk0', firstSeq, timeMs: 1000 + firstSeq, diskBytes: 1 << 30, compress: false,
    records: Array.from({ length: n }, (_, i) => ({ type: RecordType.WRITE, offset: (firstSeq + i) * 4096, data: Buffer.alloc(bytes, firstSeq + i) })),
  });
}

const made: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tm-spool-'));
  made.push(dir);
  return dir;
}

after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

test('appended frames survive a reopen, in order', async () => {
  const dir = await tempDir();
  const s = await StreamSpool.open(dir, silentLogger);
  for (const seq of [1, 3, 6]) {
    const f = frame(seq, seq === 1 ? 2 : 3);
    await s.append(f, verifyFrame(f));
  }
  assert.equal(s.nextSeq, 9);
  await s.close();
  const again = await StreamSpool.open(dir, silentLogger);
  assert.equal(again.nextSeq, 9);
  assert.deepEqual(again.pending().map((e) => [e.firstSeq, e.lastSeq]), [[1, 2], [3, 5], [6, 8]]);
  const back = await again.read(again.pending()[1]);
  assert.deepEqual(back, frame(3, 3));
  await again.close();
});

test('a torn tail (a write never acknowledged) is cut on reopen', async () => {
  const dir = await tempDir();
  const s = await StreamSpool.open(dir, silentLogger);
  const a = frame(1);
  await s.append(a, verifyFrame(a));
  await s.close();
  const [seg] = await readdir(dir);
  const fh = await open(join(dir, seg), 'a');
  await fh.write(frame(2).subarray(0, 100));
  await fh.close();
  const again = await StreamSpool.open(dir, silentLogger);
  assert.equal(again.nextSeq, 2);
  assert.equal((await stat(join(dir, seg))).size, a.length);
  const b = frame(2);
  await again.append(b, verifyFrame(b));
  assert.equal(again.nextSeq, 3);
  await again.close();
});

test('a corrupted frame is not served: the spool stops before it', async () => {
  const dir = await tempDir();
  const s = await StreamSpool.open(dir, silentLogger);
  const a = frame(1);
  const b = frame(2);
  await s.append(a, verifyFrame(a));
  await s.append(b, verifyFrame(b));
  await s.close();
  const [seg] = await readdir(dir);
  const fh = await open(join(dir, seg), 'r+');
  await fh.write(Buffer.from([0xff]), 0, 1, a.length + 200);
  await fh.close();
  const again = await StreamSpool.open(dir, silentLogger);
  assert.equal(again.nextSeq, 2, 'only the intact frame remains');
  await again.close();
});

test('acknowledged frames leave the spool and empty segments are deleted', async () => {
  const dir = await tempDir();
  const s = await StreamSpool.open(dir, silentLogger);
  for (let seq = 1; seq <= 4; seq++) {
    const f = frame(seq);
    await s.append(f, verifyFrame(f));
  }
  assert.equal(s.bytes, 4 * frame(1).length);
  await s.dropThrough(2);
  assert.deepEqual(s.pending().map((e) => e.firstSeq), [3, 4]);
  assert.equal(s.bytes, 2 * frame(1).length);
  await s.dropThrough(4);
  assert.equal(s.pending().length, 0);
  assert.deepEqual(await readdir(dir), []);
  const f = frame(5);
  await s.append(f, verifyFrame(f));
  assert.deepEqual(await readdir(dir), ['0000000000000005.spool']);
  await s.close();
});
