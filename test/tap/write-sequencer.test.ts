/** The order in which a tap disk's changes reach its file (edge-agent/tap/write-sequencer.ts), on a real file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { openSync, closeSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteSequencer } from '../../edge-agent/tap/write-sequencer.ts';

const KiB = 1024;

async function withFile(f: (fd: number, path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tm-seq-'));
  const path = join(dir, 'disk.img');
  const fd = openSync(path, 'w+');
  ftruncateSync(fd, 8 * 1024 * KiB);
  try {
    await f(fd, path);
  } finally {
    closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  }
}

test('overlapping writes end in the order they were submitted, and the file holds the last one', async () => {
  await withFile(async (fd, path) => {
    const seq = new WriteSequencer(fd);
    const ends: string[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) {
      // Each write covers the one before it and more: every pair overlaps.
      all.push(seq.write(() => undefined, Buffer.alloc((i + 1) * 64 * KiB, 0x10 + i), 0, () => void ends.push(`w${i}`)));
    }
    await Promise.all(all);
    assert.deepEqual(ends, ['w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7']);
    const file = await readFile(path);
    assert.ok(file.subarray(0, 8 * 64 * KiB).every((b) => b === 0x17));
  });
});

test('a write in pieces lands as one, in its turn among overlapping writes', async () => {
  await withFile(async (fd, path) => {
    const seq = new WriteSequencer(fd);
    const ends: string[] = [];
    const whole = Buffer.alloc(300 * KiB);
    for (let i = 0; i < whole.length; i++) whole[i] = (i * 7 + (i >> 12)) & 0xff;
    const parts = [whole.subarray(0, 5), whole.subarray(5, 64 * KiB), whole.subarray(64 * KiB, 200 * KiB), whole.subarray(200 * KiB)];
    const all = [
      seq.write(() => undefined, Buffer.alloc(128 * KiB, 0x01), 64 * KiB, () => void ends.push('before')),
      seq.writeParts(() => void ends.push('begin'), parts, whole.length, 32 * KiB, () => void ends.push('parts')),
      seq.write(() => undefined, Buffer.alloc(4 * KiB, 0x02), 100 * KiB, () => void ends.push('after')),
    ];
    await Promise.all(all);
    assert.deepEqual(ends, ['before', 'begin', 'parts', 'after']);
    const file = await readFile(path);
    const expected = Buffer.from(whole);
    expected.fill(0x02, 68 * KiB, 72 * KiB);
    assert.deepEqual(file.subarray(32 * KiB, 32 * KiB + whole.length), expected);
  });
});

test('writes to disjoint ranges run side by side; a small change runs at once unless it overlaps one under way', async () => {
  await withFile(async (fd, path) => {
    const seq = new WriteSequencer(fd, 4);
    const ends: string[] = [];
    const a = seq.write(() => undefined, Buffer.alloc(256 * KiB, 1), 0, () => void ends.push('a'));
    const b = seq.write(() => undefined, Buffer.alloc(256 * KiB, 2), 1024 * KiB, () => void ends.push('b'));
    assert.equal(seq.busy, true);
    // Disjoint from both: runs in this turn and returns its value, not a promise.
    const now = seq.run(4096 * KiB, 4 * KiB, () => {
      writeSync(fd, Buffer.alloc(4 * KiB, 3), 0, 4 * KiB, 4096 * KiB);
      ends.push('small');
      return 'done now';
    });
    assert.equal(now, 'done now');
    // Overlaps `a`: waits for it.
    const later = seq.run(128 * KiB, 4 * KiB, () => {
      writeSync(fd, Buffer.alloc(4 * KiB, 4), 0, 4 * KiB, 128 * KiB);
      ends.push('overlapping');
      return 'done later';
    });
    assert.ok(later instanceof Promise);
    assert.equal(await later, 'done later');
    await Promise.all([a, b]);
    assert.equal(ends[0], 'small');
    assert.ok(ends.indexOf('overlapping') > ends.indexOf('a'), `order ${ends.join(',')}`);
    const file = await readFile(path);
    assert.equal(file[128 * KiB], 4, 'the overlapping change came after the write it overlaps');
    assert.equal(file[0], 1);
    assert.equal(file[1024 * KiB], 2);
    assert.equal(file[4096 * KiB], 3);
  });
});

test('a barrier runs after every earlier step ended and before any later one starts, and may hold its turn with a promise', async () => {
  await withFile(async (fd) => {
    const seq = new WriteSequencer(fd);
    const events: string[] = [];
    const w1 = seq.write(() => void events.push('w1 begin'), Buffer.alloc(512 * KiB, 1), 0, () => void events.push('w1 end'));
    const w2 = seq.write(() => void events.push('w2 begin'), Buffer.alloc(512 * KiB, 2), 2048 * KiB, () => void events.push('w2 end'));
    let release!: () => void;
    const barrier = seq.barrier(() => {
      events.push('barrier');
      return new Promise<void>((r) => (release = r));
    });
    const w3 = seq.write(() => void events.push('w3 begin'), Buffer.alloc(64 * KiB, 3), 6144 * KiB, () => void events.push('w3 end'));
    const small = seq.run(7168 * KiB, 4096, () => void events.push('small'));
    assert.ok(small instanceof Promise, 'a change behind a barrier waits');
    await Promise.all([w1, w2]);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.slice(-1), ['barrier']);
    assert.ok(!events.includes('w3 begin'), 'nothing starts while the barrier holds its turn');
    release();
    await barrier;
    await Promise.all([w3, small]);
    assert.deepEqual(events.slice(events.indexOf('barrier')), ['barrier', 'w3 begin', 'small', 'w3 end']);
  });
});

test('a barrier that starts at once and returns a promise also keeps its turn', async () => {
  await withFile(async (fd) => {
    const seq = new WriteSequencer(fd);
    let release!: () => void;
    const held = seq.barrier(() => new Promise<void>((r) => (release = r)));
    assert.ok(held instanceof Promise);
    const events: string[] = [];
    const small = seq.run(0, 4096, () => void events.push('small'));
    const large = seq.write(() => void events.push('large'), Buffer.alloc(128 * KiB), 1024 * KiB, () => undefined);
    assert.ok(small instanceof Promise, 'a change waits while the barrier holds');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, []);
    release();
    await Promise.all([held, small, large]);
    assert.deepEqual(events, ['small', 'large']);
  });
});

test('a failed write rejects without its end, and later steps go on', async () => {
  await withFile(async (fd) => {
    const readOnly = new WriteSequencer(-1);
    const ends: string[] = [];
    await assert.rejects(readOnly.write(() => undefined, Buffer.alloc(128 * KiB), 0, () => void ends.push('bad')));
    assert.equal(readOnly.busy, false);
    const seq = new WriteSequencer(fd);
    const failing = seq.write(() => { throw new Error('no room'); }, Buffer.alloc(128 * KiB), 0, () => void ends.push('never'));
    const next = seq.write(() => undefined, Buffer.alloc(128 * KiB, 9), 0, () => void ends.push('next'));
    await assert.rejects(failing, /no room/);
    await next;
    assert.deepEqual(ends, ['next']);
  });
});
