/**
 * The optimised WAN link end to end, in one process on 127.0.0.1: agents' frames (plain,
 * uncompressed, zero blocks written out) go into a real process server, which ships them to a
 * real master target as zero ranges, references and compressed pieces. Replicas must equal
 * the source by hash; a master target that lost its index must get the blocks again.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { parseMetrics } from '../../core/metrics.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { startProcessServer, type ProcessServer } from '../../process-server/server.ts';
import { freePort } from '../helpers/ports.ts';
import { MIX_BLOCK_BYTES, mixedBlocks, sharedPool } from '../helpers/block-mix.ts';

const TOKEN = 'wan-test-token';
const auth = { authorization: `Bearer ${TOKEN}` };
let dir: string;
let mtPort: number;
let mt: MasterTarget;
let ps: ProcessServer;
const pool: Buffer[] = [];

async function startMt(): Promise<void> {
  mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: mtPort, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
}

before(async () => {
  await loadHashing();
  dir = await mkdtemp(join(tmpdir(), 'tm-wan-'));
  mtPort = await freePort();
  await startMt();
  ps = await startProcessServer({ dataDir: join(dir, 'ps'), host: '127.0.0.1', port: 0, masterTargetUrl: mt.url, token: TOKEN, log: silentLogger });
  pool.push(...sharedPool(7, 24));
});

after(async () => {
  await ps.close();
  await mt.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends `blocks` as an agent would (16 records a frame, block i at offset i × 64 KiB) and waits until applied. */
async function replicate(machine: string, blocks: Buffer[]): Promise<void> {
  const diskBytes = blocks.length * MIX_BLOCK_BYTES;
  for (let i = 0; i < blocks.length; i += 16) {
    const frame = encodeFrame({
      machine, disk: 'disk0', firstSeq: i + 1, timeMs: Date.now(), diskBytes, compress: false,
      records: blocks.slice(i, i + 16).map((data, k) => ({ type: RecordType.WRITE, offset: (i + k) * MIX_BLOCK_BYTES, data })),
    });
    const r = await fetch(`${ps.url}/v1/streams/${machine}/disk0/batches`, { method: 'POST', body: frame, headers: { ...auth, 'content-type': 'application/octet-stream' } });
    assert.equal(r.status, 200, await r.text());
  }
  const deadline = Date.now() + 20_000;
  for (;;) {
    const st = (await (await fetch(`${ps.url}/v1/status`, { headers: auth })).json()) as { disks: Array<{ machine: string; appliedSeq: number; error?: string }> };
    const d = st.disks.find((x) => x.machine === machine);
    if (d?.appliedSeq === blocks.length) return;
    if (Date.now() > deadline) assert.fail(`not applied in time: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function replicaHash(machine: string): Promise<string> {
  const r = await fetch(`${mt.url}/v1/machines/${machine}/disks/disk0/image?at=latest`, { headers: auth });
  assert.equal(r.status, 200);
  return createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex');
}

function sourceHash(blocks: Buffer[]): string {
  const h = createHash('sha256');
  for (const b of blocks) h.update(b);
  return h.digest('hex');
}

async function metrics(): Promise<Map<string, number>> {
  const r = await fetch(`${ps.url}/metrics`, { headers: auth });
  assert.equal(r.status, 200);
  return parseMetrics(await r.text());
}

test('zero, repeated and shared blocks cross as zero ranges and references; replicas equal their sources', async () => {
  const a = mixedBlocks(11, 96, pool);
  const b = mixedBlocks(12, 96, pool);
  await replicate('alpha', a);
  const afterA = await metrics();
  await replicate('beta', b);
  const m = await metrics();
  assert.equal(await replicaHash('alpha'), sourceHash(a));
  assert.equal(await replicaHash('beta'), sourceHash(b));
  const changed = m.get('tidemark_process_server_changed_bytes_total')!;
  assert.equal(changed, (a.length + b.length) * MIX_BLOCK_BYTES);
  assert.ok(m.get('tidemark_process_server_zero_bytes_total')! > 0, 'zero blocks sent as zero ranges');
  assert.ok(m.get('tidemark_process_server_referenced_bytes_total')! > afterA.get('tidemark_process_server_referenced_bytes_total')!, 'the second machine reuses the first one\'s blocks');
  const wire = m.get('tidemark_process_server_shipped_wire_bytes_total')!;
  assert.ok(wire < changed * 0.6, `WAN bytes ${wire} for ${changed} changed`);
});

test('a master target that lost its index is sent the blocks it lacks, and the replica is still exact', async () => {
  const before = await metrics();
  await mt.close();
  await startMt();
  // Only pool blocks: the process server believes the master target holds every one of them.
  const c = Array.from({ length: 48 }, (_, i) => pool[(i * 5) % pool.length]);
  await replicate('gamma', c);
  const m = await metrics();
  assert.ok(m.get('tidemark_process_server_missing_blocks_total')! > before.get('tidemark_process_server_missing_blocks_total')!, 'references were refused as missing');
  assert.equal(await replicaHash('gamma'), sourceHash(c));
  // Now the new master target holds them again: the next machine is sent references.
  const refsBefore = m.get('tidemark_process_server_referenced_bytes_total')!;
  await replicate('delta', c);
  assert.equal(await replicaHash('delta'), sourceHash(c));
  assert.ok((await metrics()).get('tidemark_process_server_referenced_bytes_total')! >= refsBefore + c.length * MIX_BLOCK_BYTES);
});
