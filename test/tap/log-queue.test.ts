/**
 * The tap disk's change-log queue (edge-agent/tap/log-queue.ts) on a real frame log: large
 * appends go through the thread pool, appends behind them wait and leave in order, and a frame
 * is in the log (readable, and found again after a reopen) once its append settled.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { FrameLog } from '../../core/frame-log.ts';
import { decodeFrame, recordData, RecordType } from '../../core/wire/frame.ts';
import { RecordFrameEncoder } from '../../core/wire/record-frame.ts';
import { LogQueue } from '../../edge-agent/tap/log-queue.ts';

before(loadHashing);

const DISK_BYTES = 1 << 30;

test('appends behind a large one wait, leave in seq order, and each is readable once settled', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-log-queue-'));
  try {
    const enc = new RecordFrameEncoder('web-01', 'disk0', DISK_BYTES);
    const log = await FrameLog.open(dir, 'log', silentLogger);
    let written = 0;
    const q = new LogQueue(log, { onWritten: () => written++, onFailed: (e) => assert.fail(String(e)) });
    const payloads = new Map<number, Buffer>();
    const settled: number[] = [];
    const all: Promise<void>[] = [];
    let seq = 1;
    // A small append with nothing ahead is written at once, in this turn.
    const first = enc.encode(seq, 1, 0, RecordType.WRITE, 0, 4096, (payloads.set(seq, randomBytes(4096)), payloads.get(seq)));
    assert.equal(q.append([first.head, first.payload, first.checksum], [first], false), undefined);
    assert.equal(log.nextSeq, 2);
    for (seq = 2; seq <= 40; seq++) {
      const large = seq % 3 === 0;
      const data = randomBytes(large ? (1 << 20) + seq : 4096 + seq);
      payloads.set(seq, data);
      const f = enc.encode(seq, seq, 0, RecordType.WRITE, seq * 4096, data.length, data);
      const s = seq;
      const done = q.append([f.head, f.payload, f.checksum], [f], large);
      // Seq 2 (small) still finds nothing ahead of it; from seq 3 on a large one is under way.
      if (seq === 2) assert.ok(done === undefined, "append 2 is written at once");
      else assert.ok(done instanceof Promise, `append ${seq} waits behind the large one`);
      all.push(Promise.resolve(done).then(() => {
        settled.push(s);
        // Settled means readable: the frame is in the log with its own bytes.
        const entry = [...log.from(s)][0];
        assert.equal(entry.firstSeq, s);
        assert.deepEqual(recordData(decodeFrame(log.read(entry)).records[0]), payloads.get(s));
      }));
    }
    assert.ok(q.busy);
    assert.ok(q.queuedBytes > 13 << 20);
    await q.drained();
    await Promise.all(all);
    assert.deepEqual(settled, [...Array(39).keys()].map((i) => i + 2));
    assert.equal(q.busy, false);
    assert.equal(q.queuedBytes, 0);
    assert.ok(written >= 2 && written < 40, `batched: ${written} log writes for 40 appends`);
    log.close();
    const again = await FrameLog.open(dir, 'log', silentLogger);
    assert.deepEqual(again.pending().map((e) => e.firstSeq), [...payloads.keys()]);
    for (const e of again.pending()) assert.deepEqual(recordData(decodeFrame(again.read(e)).records[0]), payloads.get(e.firstSeq));
    again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a frame log refuses another append while a pooled one is under way, and a discarded queue writes nothing more', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-log-queue-'));
  try {
    const enc = new RecordFrameEncoder('web-01', 'disk0', DISK_BYTES);
    const log = await FrameLog.open(dir, 'log', silentLogger);
    const big = enc.encode(1, 1, 0, RecordType.WRITE, 0, 1 << 20, randomBytes(1 << 20));
    const pending = log.appendPartsAsync([big.head, big.payload, big.checksum], [big]);
    const small = enc.encode(2, 2, 0, RecordType.WRITE, 0, 4096, randomBytes(4096));
    assert.throws(() => log.appendPartsSync([small.head, small.payload, small.checksum], [small]), /asynchronous append/);
    assert.equal(log.pendingCount, 0, 'not visible before it is written');
    await pending;
    assert.equal(log.pendingCount, 1);
    log.appendPartsSync([small.head, small.payload, small.checksum], [small]);

    const q = new LogQueue(log, { onWritten: () => undefined, onFailed: (e) => assert.fail(String(e)) });
    const f3 = enc.encode(3, 3, 0, RecordType.WRITE, 0, 1 << 20, randomBytes(1 << 20));
    const f4 = enc.encode(4, 4, 0, RecordType.WRITE, 0, 4096, randomBytes(4096));
    const w3 = q.append([f3.head, f3.payload, f3.checksum], [f3], true);
    const w4 = q.append([f4.head, f4.payload, f4.checksum], [f4], false);
    // The stream starts over: what is queued is dropped, what is under way is dropped once written.
    q.discard();
    await Promise.all([w3, w4]);
    assert.equal(log.pendingCount, 0);
    assert.equal(q.busy, false);
    log.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
