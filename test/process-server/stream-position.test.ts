/**
 * Where a process server's stream stands after a restart with its master target out of reach:
 * while frames are pending the spool's newest frame says it, once the spool was left empty
 * stream.json does. Either way the position is never behind what the agent was acknowledged.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { encodeFrame, RecordType, verifyFrame } from '../../core/wire/frame.ts';
import { startMasterTarget } from '../../master-target/server.ts';
import { Stream } from '../../process-server/stream.ts';
import { parseSchedule } from '../../process-server/wan/bandwidth.ts';
import { WanLink } from '../../process-server/wan/wan-link.ts';
import { randomBlock } from '../helpers/block-mix.ts';
import { seededRandom } from '../../core/seeded-random.ts';

const TOKEN = 'stream-position';
const KiB = 1024;
const UNREACHABLE = { url: 'http://127.0.0.1:1', token: TOKEN };
let dir: string;
let mt: { url: string; close(): Promise<void> };

before(async () => {
  await loadHashing();
  dir = await mkdtemp(join(tmpdir(), 'tm-ps-position-'));
  mt = await startMasterTarget({ dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, token: TOKEN, retentionSeconds: 3600, log: silentLogger });
});

after(async () => {
  await mt.close();
  await rm(dir, { recursive: true, force: true });
});

const r = seededRandom(7);
/** One 64 KiB random write per frame: a slow link ships exactly one frame per batch. */
function frame(seq: number): Buffer {
  return encodeFrame({ machine: 'm', disk: 'disk0', firstSeq: seq, timeMs: Date.now(), diskBytes: 1 << 24, compress: false, records: [{ type: RecordType.WRITE, offset: seq * 64 * KiB, data: randomBlock(r) }] });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const end = Date.now() + 30_000; !ok(); await new Promise((res) => setTimeout(res, 5))) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

async function accept(s: Stream, seqs: number[]): Promise<void> {
  for (const seq of seqs) {
    const f = frame(seq);
    assert.equal((await s.accept(f, verifyFrame(f), 1 << 30)).status, 200);
  }
}

test('after a restart the position comes from the pending frames, then from stream.json once the spool was left empty', async () => {
  const streamDir = join(dir, 'spool', 'm', 'disk0');
  let wan!: WanLink;
  let s = await Stream.open('m', 'disk0', streamDir, { url: mt.url, token: TOKEN, get wan() { return wan; } }, silentLogger);
  // 256 KiB/s: batches of at most 64 KiB, so one frame a batch, about a quarter second each.
  wan = new WanLink({ bandwidth: parseSchedule('256KiB/s') }, () => [s]);
  await accept(s, [1, 2, 3, 4]);
  s.start();
  await until('the first frame applied', () => (s.appliedNextSeq ?? 0) >= 2);
  await s.stop();
  assert.ok(s.spool.pendingCount > 0, 'frames still pending when the process server stops');

  // The master target is out of reach: the spool alone must say where the stream stands.
  s = await Stream.open('m', 'disk0', streamDir, UNREACHABLE, silentLogger);
  assert.equal(await s.acceptNextSeq(), 5);
  await s.stop();

  // Shipped to the end: the spool is left empty and its segments deleted.
  s = await Stream.open('m', 'disk0', streamDir, { url: mt.url, token: TOKEN }, silentLogger);
  await accept(s, [5, 6]);
  s.start();
  await until('everything applied', () => s.spool.pendingCount === 0);
  await s.stop();
  assert.deepEqual((await readdir(streamDir)).filter((n) => n.endsWith('.spool')), []);
  s = await Stream.open('m', 'disk0', streamDir, UNREACHABLE, silentLogger);
  assert.equal(await s.acceptNextSeq(), 7);
  await s.stop();
});
