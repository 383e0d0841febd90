/**
 * The process server's WAN limits with a real master target on 127.0.0.1: the bandwidth
 * schedule (parsing, and the rate holding over a few seconds), fair turns among streams, and
 * the whole-spool limit (alerts at 80 % and 95 %, 507 when full, nothing acknowledged lost).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { parseMetrics } from '../../core/metrics.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { startProcessServer, type ProcessServer } from '../../process-server/server.ts';
import { parseRate, parseSchedule, rateAt } from '../../process-server/wan/bandwidth.ts';
import { FairTurns } from '../../process-server/wan/fair-turns.ts';
import type { SpoolLevel } from '../../process-server/wan/spool-budget.ts';
import { freePort } from '../helpers/ports.ts';
import { randomBlock } from '../helpers/block-mix.ts';
import { seededRandom } from '../../core/seeded-random.ts';

const TOKEN = 'wan-limits';
const auth = { authorization: `Bearer ${TOKEN}` };
const KiB = 1024;
const MB = 1e6;

test('bandwidth schedules parse, wrap midnight, take the first match, and refuse nonsense', () => {
  assert.equal(parseRate('20MB/s'), 20e6);
  assert.equal(parseRate('512KiB/s'), 512 * 1024);
  assert.equal(parseRate('100Mbit/s'), 12.5e6);
  assert.equal(parseRate('unlimited'), undefined);
  const s = parseSchedule('08:00-18:00=20MB/s, 22:00-06:00=100MB/s, *=unlimited');
  const at = (h: number, m = 0) => rateAt(s, new Date(2030, 0, 1, h, m));
  assert.equal(at(8), 20e6);
  assert.equal(at(17, 59), 20e6);
  assert.equal(at(18), undefined);
  assert.equal(at(23), 100e6);
  assert.equal(at(3), 100e6);
  assert.equal(rateAt(parseSchedule('5MB/s'), new Date()), 5e6);
  for (const bad of ['08:00-18=1MB/s', '25:00-26:00=1MB/s', '*=fast', '08:00=1MB/s', '*=0B/s']) assert.throws(() => parseSchedule(bad), /invalid|rate|no =RATE|below/, bad);
});

test('turns go round: a stream that shipped waits behind the others', async () => {
  const turns = new FairTurns(1);
  const order: string[] = [];
  await Promise.all(['a', 'b', 'c'].map(async (name, i) => {
    await new Promise((r) => setTimeout(r, i));
    for (let k = 0; k < 3; k++) {
      const release = await turns.acquire();
      order.push(name);
      await new Promise((r) => setTimeout(r, 5));
      release();
    }
  }));
  assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
});

interface Harness {
  ps: ProcessServer;
  mtUrl: string;
  startMt(): Promise<void>;
  stopMt(): Promise<void>;
  close(): Promise<void>;
}

async function harness(wan: Parameters<typeof startProcessServer>[0]['wan']): Promise<Harness> {
  await loadHashing();
  const dir = await mkdtemp(join(tmpdir(), 'tm-wan-limits-'));
  const port = await freePort();
  const mtUrl = `http://127.0.0.1:${port}`;
  let mt: { close(): Promise<void> } | undefined;
  const startMt = async () => {
    mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
  };
  await startMt();
  const ps = await startProcessServer({ dataDir: join(dir, 'ps'), host: '127.0.0.1', port: 0, masterTargetUrl: mtUrl, token: TOKEN, log: silentLogger, wan });
  return {
    ps, mtUrl, startMt,
    async stopMt() {
      await mt?.close();
      mt = undefined;
    },
    async close() {
      await ps.close();
      await mt?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Random (incompressible) 64 KiB blocks as frames of `perFrame` blocks. */
function frames(machine: string, seed: number, count: number, perFrame = 1): { frames: Buffer[]; blocks: Buffer[] } {
  const r = seededRandom(seed);
  const blocks = Array.from({ length: count }, () => randomBlock(r));
  const out: Buffer[] = [];
  for (let i = 0; i < count; i += perFrame) {
    out.push(encodeFrame({
      machine, disk: 'disk0', firstSeq: i + 1, timeMs: Date.now(), diskBytes: count * 64 * KiB, compress: false,
      records: blocks.slice(i, i + perFrame).map((data, k) => ({ type: RecordType.WRITE, offset: (i + k) * 64 * KiB, data })),
    }));
  }
  return { frames: out, blocks };
}

async function post(ps: ProcessServer, machine: string, frame: Buffer): Promise<Response> {
  return fetch(`${ps.url}/v1/streams/${machine}/disk0/batches`, { method: 'POST', body: frame, headers: { ...auth, 'content-type': 'application/octet-stream' } });
}

async function appliedSeq(ps: ProcessServer, machine: string): Promise<number> {
  const st = (await (await fetch(`${ps.url}/v1/status`, { headers: auth })).json()) as { disks: Array<{ machine: string; appliedSeq: number }> };
  return st.disks.find((d) => d.machine === machine)?.appliedSeq ?? 0;
}

async function waitApplied(ps: ProcessServer, machine: string, seq: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while ((await appliedSeq(ps, machine)) < seq) {
    if (Date.now() > deadline) assert.fail(`${machine} not applied to ${seq} in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now();
}

test('the bandwidth limit holds over a few seconds', async () => {
  const RATE = 2 * MB;
  const h = await harness({ bandwidth: parseSchedule('*=2MB/s') });
  try {
    const { frames: fs } = frames('bw', 1, 96); // 6 MiB of incompressible data
    const started = performance.now();
    for (const f of fs) assert.equal((await post(h.ps, 'bw', f)).status, 200);
    await waitApplied(h.ps, 'bw', 96);
    const seconds = (performance.now() - started) / 1000;
    const m = parseMetrics(await (await fetch(`${h.ps.url}/metrics`, { headers: auth })).text());
    const sent = m.get('tidemark_process_server_sent_bytes_total')!;
    assert.equal(m.get('tidemark_process_server_bandwidth_limit_bytes_per_second'), RATE);
    // Pacing lets one batch (a quarter second of the rate) leave at once; never more.
    const floor = (sent - RATE / 4) / RATE;
    assert.ok(seconds >= floor * 0.95, `${sent} bytes in ${seconds.toFixed(2)} s: faster than the limit allows (${floor.toFixed(2)} s)`);
    assert.ok(seconds < floor * 3 + 2, `${sent} bytes took ${seconds.toFixed(2)} s, far slower than the limit`);
  } finally {
    await h.close();
  }
});

test('with several streams on a slow link, none waits for another to finish', async () => {
  const h = await harness({ bandwidth: parseSchedule('*=2MB/s') });
  try {
    const big = frames('big', 2, 96, 4); // 6 MiB
    const small = ['s1', 's2', 's3'].map((m, i) => ({ m, ...frames(m, 10 + i, 8, 4) })); // 512 KiB each
    for (const f of big.frames) assert.equal((await post(h.ps, 'big', f)).status, 200);
    for (const s of small) for (const f of s.frames) assert.equal((await post(h.ps, s.m, f)).status, 200);
    const [bigDone, ...smallDone] = await Promise.all([waitApplied(h.ps, 'big', 96), ...small.map((s) => waitApplied(h.ps, s.m, 8))]);
    for (const t of smallDone) assert.ok(t < bigDone, 'a small stream finished only after the big one');
  } finally {
    await h.close();
  }
});

test('the spool warns at 80% and 95%, refuses with 507 when full, and loses nothing it acknowledged', async () => {
  const levels: SpoolLevel[] = [];
  // Frames of one 64 KiB block take 65,627 bytes: 14 fill 91 % (warning), 15 fill 97.5 % (critical), 16 do not fit.
  const LIMIT = 1_010_000;
  const h = await harness({ spoolMaxBytes: LIMIT, onSpoolLevel: (s) => levels.push(s.level) });
  try {
    const { frames: fs, blocks } = frames('sp', 3, 32);
    // The process server learns where the stream starts, then the master target goes away: nothing drains.
    assert.equal((await fetch(`${h.ps.url}/v1/streams/sp/disk0`, { headers: auth })).status, 200);
    await h.stopMt();
    let acked = 0;
    let refused: Response | undefined;
    for (const f of fs) {
      const r = await post(h.ps, 'sp', f);
      if (r.status === 507) {
        refused = r;
        break;
      }
      assert.equal(r.status, 200);
      acked++;
    }
    assert.ok(refused, 'the spool never filled');
    assert.match(((await refused.json()) as { error: string }).error, /spool/);
    assert.equal(acked, 15);
    assert.deepEqual(levels, ['warning', 'critical', 'full']);
    const st = (await (await fetch(`${h.ps.url}/v1/status`, { headers: auth })).json()) as { spool: { level: string; usedBytes: number; limitBytes: number } };
    assert.equal(st.spool.limitBytes, LIMIT);
    assert.equal(st.spool.level, 'full');
    const m = parseMetrics(await (await fetch(`${h.ps.url}/metrics`, { headers: auth })).text());
    assert.equal(m.get('tidemark_process_server_spool_limit_bytes'), LIMIT);
    assert.ok(m.get('tidemark_process_server_spool_refused_batches_total')! >= 1);
    // The master target comes: everything acknowledged arrives, and the spool drains to ok.
    await h.startMt();
    await waitApplied(h.ps, 'sp', acked);
    const img = Buffer.from(await (await fetch(`${h.mtUrl}/v1/machines/sp/disks/disk0/image?at=latest`, { headers: auth })).arrayBuffer());
    const want = createHash('sha256').update(Buffer.concat([...blocks.slice(0, acked), Buffer.alloc((32 - acked) * 64 * KiB)])).digest('hex');
    assert.equal(createHash('sha256').update(img).digest('hex'), want);
    assert.equal(levels[levels.length - 1], 'ok');
  } finally {
    await h.close();
  }
});

test('/metrics needs credentials and parses', async () => {
  const h = await harness(undefined);
  try {
    assert.equal((await fetch(`${h.ps.url}/metrics`)).status, 401);
    const r = await fetch(`${h.ps.url}/metrics`, { headers: auth });
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await r.text());
    assert.equal(m.get('tidemark_process_server_received_batches_total'), 0);
    assert.equal(m.get('tidemark_process_server_bandwidth_limit_bytes_per_second'), Infinity);
  } finally {
    await h.close();
  }
});
