/**
 * The process server's ingest API through app.request, with a real master target behind it
 * (on 127.0.0.1, port 0) for the positions of new streams.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { Streams } from '../../process-server/streams.ts';
import { processServerApp } from '../../process-server/http.ts';
import { BookmarkBook } from '../../process-server/bookmarks.ts';

const TOKEN = 'ps-test-token';
let dir: string;
let mt: { url: string; close(): Promise<void> };
let streams: Streams;
let app: ReturnType<typeof processServerApp>;

before(async () => {
  await loadHashing();
  dir = await mkdtemp(join(tmpdir(), 'tm-ps-http-'));
  mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
  streams = new Streams(join(dir, 'spool'), { url: mt.url, token: TOKEN }, silentLogger);
  app = processServerApp({ streams, token: TOKEN, maxSpoolBytes: 256 * 1024, bookmarks: new BookmarkBook(), log: silentLogger });
});

after(async () => {
  await streams.close();
  await mt.close();
  await rm(dir, { recursive: true, force: true });
});

function frame(firstSeq: number, n = 1, disk = 'disk0', bytes = 4096): Buffer {
  return encodeFrame({
    machine: 'web', disk, firstSeq, timeMs: Date.now(), diskBytes: 1 << 24, compress: false,
    records: Array.from({ length: n }, (_, i) => ({ type: RecordType.WRITE, offset: (firstSeq + i) * 4096, data: Buffer.alloc(bytes, 1 + i) })),
  });
}

async function post(path: string, body: Buffer, token: string | undefined = TOKEN): Promise<Response> {
  return app.request(path, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
}

test('no token or a wrong one gets 401; /healthz needs none', async () => {
  assert.equal((await app.request('/healthz')).status, 200);
  assert.equal((await app.request('/v1/status')).status, 401);
  assert.equal((await post('/v1/streams/web/disk0/batches', frame(1), 'wrong')).status, 401);
});

test('batches are accepted in order, duplicates acknowledged, gaps refused with the position', async () => {
  const pos = await app.request('/v1/streams/web/disk0', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual(await pos.json(), { machine: 'web', disk: 'disk0', nextSeq: 1 });
  let r = await post('/v1/streams/web/disk0/batches', frame(1, 3));
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { nextSeq: 4 });
  r = await post('/v1/streams/web/disk0/batches', frame(1, 3));
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { duplicate?: boolean }).duplicate, true);
  r = await post('/v1/streams/web/disk0/batches', frame(9));
  assert.equal(r.status, 409);
  assert.equal(((await r.json()) as { nextSeq: number }).nextSeq, 4);
  r = await post('/v1/streams/web/disk0/batches', frame(2, 3));
  assert.equal(r.status, 409, 'a partial overlap is refused too');
});

test('every kind of bad frame is refused with its reason and nothing is stored', async () => {
  const good = frame(1, 1, 'disk1');
  const bad = Buffer.from(good);
  bad[bad.length - 1] ^= 1;
  const v9 = Buffer.from(good);
  v9.writeUInt16BE(9, 4);
  for (const [body, reason] of [[bad, 'bad-checksum'], [good.subarray(0, 30), 'truncated'], [v9, 'unsupported-version'], [Buffer.from('hello there, not a frame at all, definitely not.....'), 'bad-magic']] as const) {
    const r = await post('/v1/streams/web/disk1/batches', body);
    assert.equal(r.status, 400);
    const b = (await r.json()) as { reason: string; error: string };
    assert.equal(b.reason, reason, b.error);
  }
  const wrongPath = await post('/v1/streams/web/disk2/batches', good);
  assert.equal(wrongPath.status, 400);
  assert.match(((await wrongPath.json()) as { error: string }).error, /frame is for web\/disk1/);
  const pos = await app.request('/v1/streams/web/disk1', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(((await pos.json()) as { nextSeq: number }).nextSeq, 1);
});

test('a full spool answers 507 and keeps nothing of the refused batch', async () => {
  // One batch larger than the whole spool limit (256 KiB).
  const big = frame(1, 80, 'disk3');
  const r = await post('/v1/streams/web/disk3/batches', big);
  assert.equal(r.status, 507);
  assert.match(((await r.json()) as { error: string }).error, /spool full/);
  const pos = await app.request('/v1/streams/web/disk3', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(((await pos.json()) as { nextSeq: number }).nextSeq, 1);
});

test('a heartbeat with a bad body is refused with the field named', async () => {
  const r = await app.request('/v1/agents/web/heartbeat', {
    method: 'POST', body: JSON.stringify({ disks: [{ disk: 'disk0', phase: 'SLEEPING' }] }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: string }).error, /disks\.0\.phase/);
});
