/**
 * The master target's side of version 2 frames, through its app: references resolve only to
 * bytes that hash to them (a stale index entry is caught), anything it cannot resolve is
 * answered 422 with the hashes it lacks, and corrupt or unknown records and versions are
 * refused; in every refusal nothing is applied. Also its /metrics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadHashing, xxh64Of } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { parseMetrics } from '../../core/metrics.ts';
import { encodeFrame, FRAME_VERSION_PIECES, RecordType } from '../../core/wire/frame.ts';
import { contentHash, hashName, PieceKind, type Piece } from '../../core/wire/pieces.ts';
import { encodeRawFrame, type RawRecord } from '../../core/wire/raw-frame.ts';
import { openMasterTarget, type MasterTargetApp } from '../../master-target/server.ts';
import { tempDir } from './support.ts';

const TOKEN = 'mt-wan-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const KiB = 1024;
const DISK = 1024 * KiB;
let mt: MasterTargetApp;
let cleanup: () => Promise<void>;
let seq = 1;

before(async () => {
  await loadHashing();
  const t = await tempDir('mt-wan');
  cleanup = t.remove;
  mt = await openMasterTarget({ dataDir: t.path, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
});

after(async () => {
  await mt.close();
  await cleanup();
});

function block(fill: number, bytes = 64 * KiB): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE((i * 2654435761 + fill * 97) >>> 0, i);
  return b;
}

function v2(records: RawRecord[], firstSeq = seq, version = FRAME_VERSION_PIECES): Buffer {
  return encodeRawFrame({ version, flags: 0, firstSeq, timeMs: Date.now(), diskBytes: DISK, machine: 'm', disk: 'disk0' }, records);
}

function pieces(offset: number, ps: Piece[]): RawRecord {
  return { type: RecordType.PIECES, offset, lengthBytes: ps.reduce((n, p) => n + p.lengthBytes, 0), payload: ps };
}

const data = (b: Buffer): Piece => ({ kind: PieceKind.DATA, lengthBytes: b.length, hash: contentHash(b), data: b });
const ref = (b: Buffer): Piece => ({ kind: PieceKind.REF, lengthBytes: b.length, hash: contentHash(b) });

async function post(body: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await mt.app.request('/v1/streams/m/disk0/batches', { method: 'POST', body, headers: { ...auth, 'content-type': 'application/octet-stream' } });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

async function image(): Promise<Buffer> {
  const r = await mt.app.request('/v1/machines/m/disks/disk0/image?at=latest', { headers: auth });
  assert.equal(r.status, 200);
  return Buffer.from(await r.arrayBuffer());
}

async function applied(body: Buffer): Promise<void> {
  const r = await post(body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  seq = r.json.nextSeq as number;
}

test('the stream position says which frame versions the master target reads', async () => {
  const r = await mt.app.request('/v1/streams/m/disk0', { headers: auth });
  assert.deepEqual(((await r.json()) as { wireVersions: number[] }).wireVersions, [1, 2]);
});

test('data, zero and referenced pieces resolve into the bytes they stand for', async () => {
  const a = block(1);
  const b = block(2);
  // One write: a, zeros, a again (a reference to a piece of the same frame), then b.
  await applied(v2([pieces(0, [data(a), { kind: PieceKind.ZERO, lengthBytes: 64 * KiB }, ref(a), data(b)])]));
  // Later frames reference blocks the master target now holds.
  await applied(v2([pieces(512 * KiB, [ref(b), ref(a)]), { type: RecordType.TAG, offset: 0, lengthBytes: 0, payload: Buffer.from(JSON.stringify({ kind: 'crash', timeMs: Date.now() })) }]));
  const img = await image();
  assert.ok(img.subarray(0, 64 * KiB).equals(a));
  assert.ok(img.subarray(64 * KiB, 128 * KiB).equals(Buffer.alloc(64 * KiB)));
  assert.ok(img.subarray(128 * KiB, 192 * KiB).equals(a));
  assert.ok(img.subarray(192 * KiB, 256 * KiB).equals(b));
  assert.ok(img.subarray(512 * KiB, 576 * KiB).equals(b));
  assert.ok(img.subarray(576 * KiB, 640 * KiB).equals(a));
});

test('a reference to a block no longer where the index says is answered with the missing hash, nothing applied', async () => {
  const c = block(3);
  await applied(v2([pieces(768 * KiB, [data(c)])]));
  // Overwrite it with a plain version 1 write: the index entry for c is now stale.
  await applied(encodeFrame({ machine: 'm', disk: 'disk0', firstSeq: seq, timeMs: Date.now(), diskBytes: DISK, records: [{ type: RecordType.WRITE, offset: 768 * KiB, data: block(4) }] }));
  const before = await image();
  const unknown = block(5);
  const r = await post(v2([pieces(0, [ref(c)]), pieces(64 * KiB, [ref(unknown)])]));
  assert.equal(r.status, 422);
  assert.equal(r.json.reason, 'missing-blocks');
  assert.deepEqual(new Set(r.json.missing as string[]), new Set([hashName(contentHash(c)), hashName(contentHash(unknown))]));
  assert.ok((await image()).equals(before), 'nothing applied');
  // Sent again with the data, it applies.
  await applied(v2([pieces(0, [data(c)]), pieces(64 * KiB, [data(unknown)])]));
  const img = await image();
  assert.ok(img.subarray(0, 64 * KiB).equals(c) && img.subarray(64 * KiB, 128 * KiB).equals(unknown));
});

test('a block once resolved and verified resolves again after its place on the replica was overwritten', async () => {
  const d = block(9);
  await applied(v2([pieces(832 * KiB, [data(d)])]));
  // Resolved through the content index (read and hashed): now kept as verified.
  await applied(v2([pieces(896 * KiB, [ref(d)])]));
  // Both places that held d are overwritten; the index has nowhere left to point.
  await applied(encodeFrame({ machine: 'm', disk: 'disk0', firstSeq: seq, timeMs: Date.now(), diskBytes: DISK, records: [
    { type: RecordType.WRITE, offset: 832 * KiB, data: block(10) }, { type: RecordType.WRITE, offset: 896 * KiB, data: block(11) },
  ] }));
  await applied(v2([pieces(960 * KiB, [ref(d)])]));
  const img = await image();
  assert.ok(img.subarray(960 * KiB, 1024 * KiB).equals(d));
  assert.ok(img.subarray(832 * KiB, 896 * KiB).equals(block(10)) && img.subarray(896 * KiB, 960 * KiB).equals(block(11)));
});

test('a reference whose claimed data does not hash to it is not resolved from that data', async () => {
  const real = block(6);
  const lie: Piece = { kind: PieceKind.DATA, lengthBytes: 64 * KiB, hash: contentHash(real), data: block(7) };
  const r = await post(v2([pieces(0, [lie]), pieces(64 * KiB, [ref(real)])]));
  assert.equal(r.status, 422, 'the in-frame block does not hash to the reference');
});

test('corrupt pieces, unknown record types and unknown versions are refused, nothing applied', async () => {
  const before = await image();
  const good = v2([pieces(0, [data(block(8))])]);
  const kind = Buffer.from(good);
  // The first piece's kind byte: frame header 52 + names 1 + 5, record header 24.
  kind[52 + 1 + 5 + 24] = 9;
  const badType = Buffer.from(good);
  badType[52 + 1 + 5] = 9;
  const v3 = Buffer.from(good);
  v3.writeUInt16BE(3, 4);
  const pieceInV1 = v2([pieces(0, [data(block(8))])], seq, 1);
  const short = v2([{ type: RecordType.PIECES, offset: 0, lengthBytes: 128 * KiB, payload: [data(block(8))] }]);
  for (const [what, body, reason] of [
    ['unknown piece kind', resign(kind), 'malformed'],
    ['unknown record type', resign(badType), 'malformed'],
    ['unknown version', resign(v3), 'unsupported-version'],
    ['pieces record in a version 1 frame', pieceInV1, 'malformed'],
    ['pieces shorter than the record', short, 'malformed'],
    ['bad checksum', Buffer.concat([good.subarray(0, good.length - 1), Buffer.from([good[good.length - 1] ^ 1])]), 'bad-checksum'],
  ] as const) {
    const r = await post(body);
    assert.equal(r.status, 400, what);
    assert.equal(r.json.reason, reason, what);
  }
  assert.ok((await image()).equals(before));
});

test('/metrics needs the token and counts what was applied and referenced', async () => {
  assert.equal((await mt.app.request('/metrics')).status, 401);
  const r = await mt.app.request('/metrics', { headers: auth });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const m = parseMetrics(await r.text());
  assert.ok(m.get('tidemark_master_target_applied_batches_total')! >= 5);
  assert.ok(m.get('tidemark_master_target_referenced_bytes_total')! >= 3 * 64 * KiB);
  assert.ok(m.get('tidemark_master_target_references_missing_total')! >= 2);
  assert.equal(m.get('tidemark_master_target_stream_applied_seq{machine="m",disk="disk0"}'), seq - 1);
  assert.equal(m.get('tidemark_master_target_open_views'), 0);
});

/** Rewrites a frame's checksum after an edit, so that the edit itself is what gets refused. */
function resign(frame: Buffer): Buffer {
  const out = Buffer.from(frame);
  xxh64Of(out.subarray(0, out.length - 8)).copy(out, out.length - 8);
  return out;
}
