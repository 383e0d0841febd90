/**
 * Block hashes of a replica through the process server (docs/wire-format.md, "Block hashes"):
 * a real master target on 127.0.0.1 behind the process server's app; hashes compared with the
 * model of the disk, answers while batches are still pending, and bad ranges.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockHash, loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { Streams } from '../../process-server/streams.ts';
import { processServerApp } from '../../process-server/http.ts';
import { BookmarkBook } from '../../process-server/bookmarks.ts';
import { freePort } from '../helpers/ports.ts';

const TOKEN = 'ps-hash-token';
const BLOCK = 64 * 1024;
/** Not a whole number of blocks: the last block is short. */
const DISK_BYTES = 10 * BLOCK + 4096;
const auth = { authorization: `Bearer ${TOKEN}` };
let dir: string;
let mt: { url: string; close(): Promise<void> };
const open: Streams[] = [];

before(async () => {
  await loadHashing();
  dir = await mkdtemp(join(tmpdir(), 'tm-ps-hashes-'));
  mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
});

after(async () => {
  for (const s of open) await s.close();
  await mt.close();
  await rm(dir, { recursive: true, force: true });
});

function psApp(name: string, mtUrl: string) {
  const streams = new Streams(join(dir, name), { url: mtUrl, token: TOKEN }, silentLogger);
  open.push(streams);
  return processServerApp({ streams, token: TOKEN, maxSpoolBytes: 1 << 30, bookmarks: new BookmarkBook(), log: silentLogger });
}

function frame(machine: string, firstSeq: number, offset: number, data: Buffer): Buffer {
  return encodeFrame({ machine, disk: 'disk0', firstSeq, timeMs: Date.now(), diskBytes: DISK_BYTES, compress: false, records: [{ type: RecordType.WRITE, offset, data }] });
}

function hashesOf(model: Buffer, first: number, count: number): Buffer {
  const out: Buffer[] = [];
  for (let b = first; b < first + count; b++) out.push(blockHash(model.subarray(b * BLOCK, Math.min(model.length, (b + 1) * BLOCK))));
  return Buffer.concat(out);
}

test('the process server answers with the replica hashes of its latest applied state, once everything is applied', async () => {
  const app = psApp('spool-a', mt.url);
  const model = Buffer.alloc(DISK_BYTES);
  const writes: Array<[number, Buffer]> = [[0, Buffer.alloc(BLOCK, 7)], [3 * BLOCK + 100, Buffer.alloc(5000, 9)], [10 * BLOCK, Buffer.alloc(4096, 3)]];
  for (let i = 0; i < writes.length; i++) {
    const [offset, data] = writes[i];
    data.copy(model, offset);
    const r = await app.request('/v1/streams/hm/disk0/batches', { method: 'POST', body: frame('hm', i + 1, offset, data), headers: { ...auth, 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 200);
  }
  // The answer waits for the spool to ship: it describes seq 3, everything the process server holds.
  const r = await app.request('/v1/streams/hm/disk0/block-hashes?first=0&count=4096', { headers: auth });
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { version: number; seq: number; first: number; count: number; blockBytes: number; hash: string; hashes: string; receivedNextSeq: number };
  assert.deepEqual([body.version, body.seq, body.first, body.count, body.blockBytes, body.hash, body.receivedNextSeq], [1, 3, 0, 11, BLOCK, 'xxh128', 4]);
  assert.deepEqual(Buffer.from(body.hashes, 'base64'), hashesOf(model, 0, 11), 'every hash, the short last block included');

  const part = (await (await app.request('/v1/streams/hm/disk0/block-hashes?first=3&count=2', { headers: auth })).json()) as { count: number; hashes: string };
  assert.deepEqual(Buffer.from(part.hashes, 'base64'), hashesOf(model, 3, 2));
  const past = (await (await app.request('/v1/streams/hm/disk0/block-hashes?first=50&count=2', { headers: auth })).json()) as { count: number };
  assert.equal(past.count, 0, 'a range past the end has no blocks');
});

test('bad ranges get 400, an unknown disk 404, and a stream still shipping 409 with the positions', async () => {
  const app = psApp('spool-b', mt.url);
  for (const q of ['first=0&count=0', 'first=0&count=4097', 'first=-1&count=1', 'count=1', 'first=0&count=1&waitMs=x']) {
    const r = await app.request(`/v1/streams/hm/disk0/block-hashes?${q}`, { headers: auth });
    assert.equal(r.status, 400, q);
    assert.match(((await r.json()) as { error: string }).error, /first|count|waitMs/);
  }
  assert.equal((await app.request('/v1/streams/nosuch/disk0/block-hashes?first=0&count=1', { headers: auth })).status, 404);
  assert.equal((await app.request('/v1/streams/hm/disk0/block-hashes?first=0&count=1')).status, 401);

  // A process server whose master target is away (its position known from before) keeps the batch pending.
  const port = await freePort();
  const away = psApp('spool-c', `http://127.0.0.1:${port}`);
  const streams = open[open.length - 1];
  const s = await streams.get('pending', 'disk0');
  s.appliedNextSeq = 1;
  const r1 = await away.request('/v1/streams/pending/disk0/batches', { method: 'POST', body: frame('pending', 1, 0, Buffer.alloc(4096, 1)), headers: { ...auth, 'content-type': 'application/octet-stream' } });
  assert.equal(r1.status, 200);
  const r = await away.request('/v1/streams/pending/disk0/block-hashes?first=0&count=1&waitMs=100', { headers: auth });
  assert.equal(r.status, 409);
  assert.deepEqual((({ appliedNextSeq, receivedNextSeq }) => ({ appliedNextSeq, receivedNextSeq }))((await r.json()) as { appliedNextSeq: number; receivedNextSeq: number }), { appliedNextSeq: 1, receivedNextSeq: 2 });
});
