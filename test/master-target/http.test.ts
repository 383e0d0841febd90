import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { xxh64Of } from '../../core/hash.ts';
import { serve } from '../../core/http/serve.ts';
import { openMasterTarget, startMasterTarget, type MasterTargetApp } from '../../master-target/server.ts';
import { generateBatches, referenceHash, sha256, tempDir } from './support.ts';

const TOKEN = 'test-token-123';
const MiB = 1024 * 1024;
const auth = { authorization: `Bearer ${TOKEN}` };
const batches = generateBatches({ seed: 3, batches: 12, diskBytes: 8 * MiB, maxRecords: 6, maxWriteBytes: 128 * 1024 });

function post(mt: MasterTargetApp, body: Buffer, path = '/v1/streams/m1/disk0/batches', headers: Record<string, string> = auth) {
  return mt.app.request(path, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/octet-stream' } });
}

async function json(res: Response): Promise<any> {
  return res.json();
}

function resign(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  xxh64Of(out.subarray(0, out.length - 8)).copy(out, out.length - 8);
  return out;
}

describe('master target HTTP API', () => {
  let dir: { path: string; remove(): Promise<void> };
  let mt: MasterTargetApp;
  before(async () => {
    dir = await tempDir('http');
    mt = await openMasterTarget({ dataDir: dir.path, token: TOKEN, retentionSeconds: 100 * 365 * 86400, log: silentLogger });
  });
  after(async () => {
    await mt.close();
    await dir.remove();
  });

  it('answers healthz without a token and 401 without or with a wrong token', async () => {
    assert.deepEqual(await json(await mt.app.request('/healthz')), { ok: true });
    assert.equal((await mt.app.request('/v1/streams/m1/disk0')).status, 401);
    const wrong = await mt.app.request('/v1/streams/m1/disk0', { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    assert.match((await json(wrong)).error, /token/);
    assert.equal((await post(mt, encodeFrame(batches[0]), undefined, {})).status, 401);
    assert.deepEqual(await json(await mt.app.request('/v1/streams/m1/disk0', { headers: auth })), { machine: 'm1', disk: 'disk0', nextSeq: 1, wireVersions: [1, 2] });
  });

  it('refuses each kind of bad frame with 400 and its reason, storing nothing', async () => {
    const good = encodeFrame(batches[0]);
    const versioned = Buffer.from(good);
    versioned.writeUInt16BE(3, 4);
    const flipped = Buffer.from(good);
    flipped[good.length - 20] ^= 0xff;
    const magic = Buffer.from(good);
    magic.write('XXXX', 0, 'latin1');
    const cases: Array<[string, Buffer, string]> = [
      ['truncated', good.subarray(0, good.length - 10), 'truncated'],
      ['short header', good.subarray(0, 20), 'truncated'],
      ['bad checksum', flipped, 'bad-checksum'],
      ['unknown version', resign(versioned), 'unsupported-version'],
      ['bad magic', magic, 'bad-magic'],
      ['other stream', encodeFrame({ ...batches[0], disk: 'disk1' }), 'malformed'],
    ];
    for (const [what, body, reason] of cases) {
      const res = await post(mt, body);
      assert.equal(res.status, 400, what);
      const j = await json(res);
      assert.equal(j.reason, reason, what);
      assert.ok(j.error, what);
    }
    assert.equal(mt.store.get('m1', 'disk0'), undefined);
    assert.equal((await post(mt, encodeFrame(batches[0]), '/v1/streams/bad..name!/disk0/batches')).status, 400);
  });

  it('refuses a body larger than a frame can be with 413', async () => {
    const res = await post(mt, Buffer.alloc(66 * MiB));
    assert.equal(res.status, 413);
  });

  it('applies in order, answers duplicates with 200 and gaps with 409', async () => {
    const gap = await post(mt, encodeFrame(batches[1]));
    assert.equal(gap.status, 409);
    assert.equal((await json(gap)).nextSeq, 1);
    for (const b of batches) {
      const res = await post(mt, encodeFrame(b));
      assert.equal(res.status, 200);
      assert.deepEqual(await json(res), { nextSeq: b.firstSeq + b.records.length });
    }
    const nextSeq = batches.at(-1)!.firstSeq + batches.at(-1)!.records.length;
    const dup = await post(mt, encodeFrame(batches[4]));
    assert.equal(dup.status, 200);
    assert.deepEqual(await json(dup), { nextSeq, duplicate: true });
    const ahead = await post(mt, encodeFrame({ ...batches[0], firstSeq: nextSeq + 3 }));
    assert.equal(ahead.status, 409);
    assert.equal((await json(ahead)).nextSeq, nextSeq);
    const overlap = await post(mt, encodeFrame({ ...batches[0], firstSeq: nextSeq - 1, records: [batches[0].records[0], batches[0].records[0]] }));
    assert.equal(overlap.status, 409);
    const machines = await json(await mt.app.request('/v1/machines', { headers: auth }));
    const journalBytes = mt.store.get('m1', 'disk0')!.journalBytes;
    assert.ok(journalBytes > 0);
    assert.deepEqual(machines, { machines: [{ machine: 'm1', disks: [{ disk: 'disk0', diskBytes: 8 * MiB, appliedSeq: nextSeq - 1, journalBytes }] }] });
  });

  it('lists points oldest first with paging, and answers 404 for unknown disks and points', async () => {
    const res = await mt.app.request('/v1/machines/m1/disks/disk0/points', { headers: auth });
    const { points } = await json(res);
    const tags = batches.flatMap((b) => b.records.map((r, i) => [r, b.firstSeq + i] as const)).filter(([r]) => r.type === RecordType.TAG);
    assert.ok(points.length >= tags.length);
    for (let i = 1; i < points.length; i++) assert.ok(points[i].seq > points[i - 1].seq);
    for (const p of points) assert.deepEqual(Object.keys(p).filter((k) => k !== 'name').sort(), ['consistent', 'id', 'kind', 'seq', 'time']);
    const page = await json(await mt.app.request(`/v1/machines/m1/disks/disk0/points?since=${points[0].seq}&limit=2`, { headers: auth }));
    assert.deepEqual(page.points, points.slice(1, 3));
    assert.equal((await mt.app.request('/v1/machines/m1/disks/nope/points', { headers: auth })).status, 404);
    const missing = await mt.app.request('/v1/machines/m1/disks/disk0/image?at=999999', { headers: auth });
    assert.equal(missing.status, 404);
    assert.match((await json(missing)).hint, /points/);
    assert.equal((await mt.app.request('/v1/machines/m1/disks/disk0/image?at=yesterday-ish', { headers: auth })).status, 400);
  });
  it('streams an export in chunks and releases its reader when the client goes away', async () => {
    const stream = mt.store.get('m1', 'disk0')!;
    const res = await mt.app.request('/v1/machines/m1/disks/disk0/image?at=latest', { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(Number(res.headers.get('content-length')), 8 * MiB);
    assert.equal(stream.openReaders, 1);
    const body = res.body!.getReader();
    const first = await body.read();
    assert.ok(first.value && first.value.length > 0 && first.value.length < 8 * MiB, 'the first chunk is a part of the image');
    await body.cancel();
    assert.equal(stream.openReaders, 0);
  });
});

describe('master target over a real socket', () => {
  it('streams exact images for latest, a point id and an ISO time', async () => {
    const dir = await tempDir('http-real');
    const mt = await startMasterTarget({ dataDir: dir.path, host: '127.0.0.1', port: 0, token: TOKEN, retentionSeconds: 100 * 365 * 86400, log: silentLogger });
    try {
      assert.ok(mt.port > 0);
      for (const b of batches) {
        const res = await fetch(`${mt.url}/v1/streams/m1/disk0/batches`, { method: 'POST', body: encodeFrame(b), headers: auth });
        assert.equal(res.status, 200);
      }
      const last = batches.at(-1)!.firstSeq + batches.at(-1)!.records.length - 1;
      const { points } = (await (await fetch(`${mt.url}/v1/machines/m1/disks/disk0/points`, { headers: auth })).json()) as { points: Array<{ id: string; seq: number; time: string }> };
      const mid = points[Math.floor(points.length / 2)];
      for (const [at, seq] of [['latest', last], [mid.id, mid.seq], [mid.time, undefined]] as const) {
        const res = await fetch(`${mt.url}/v1/machines/m1/disks/disk0/image?at=${encodeURIComponent(at)}`, { headers: auth });
        assert.equal(res.status, 200, at);
        const got = Number(res.headers.get('x-tidemark-point'));
        if (seq !== undefined) assert.equal(got, seq);
        else assert.ok(got >= mid.seq && points.some((p) => p.seq === got), `time resolves to a point at or after ${mid.seq}`);
        const body = Buffer.from(await res.arrayBuffer());
        assert.equal(Number(res.headers.get('content-length')), body.length);
        assert.equal(sha256(body), referenceHash(batches, got, 8 * MiB), `image at ${at}`);
      }
      assert.equal((await fetch(`${mt.url}/v1/machines`)).status, 401);
      // Export copies are deleted once streamed.
      for (let i = 0; i < 50 && (await readdir(join(dir.path, 'tmp'))).length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), []);
    } finally {
      await mt.close();
      await dir.remove();
    }
  });

  it('releases the reader of an export when the client disconnects mid-image', async () => {
    const dir = await tempDir('http-abort');
    const mt = await openMasterTarget({ dataDir: dir.path, retentionSeconds: 100 * 365 * 86400, log: silentLogger });
    const listening = await serve(mt.app, { host: '127.0.0.1', port: 0 });
    try {
      for (const b of batches) assert.equal((await post(mt, encodeFrame(b), undefined, {})).status, 200);
      const stream = mt.store.get('m1', 'disk0')!;
      const abort = new AbortController();
      const res = await fetch(`${listening.url}/v1/machines/m1/disks/disk0/image?at=latest`, { signal: abort.signal });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(8 * MiB));
      await res.body!.getReader().read();
      abort.abort();
      for (let i = 0; i < 100 && stream.openReaders; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stream.openReaders, 0);
    } finally {
      await listening.close();
      await mt.close();
      await dir.remove();
    }
  });
});
