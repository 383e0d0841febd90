/** The index of held writes and the store of their copies (docs/agent-state.md, "Held writes"). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, truncate, stat, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHashing } from '../../core/hash.ts';
import { createLogger } from '../../core/log.ts';
import { HeldWrites } from '../../edge-agent/tap/held-writes.ts';
import { HeldCopies } from '../../edge-agent/tap/held-copies.ts';

const MiB = 1024 * 1024;
const log = createLogger('test', { level: 'error' });

test('held writes are found by any overlapping range until copied or acknowledged', () => {
  const h = new HeldWrites();
  h.add(5, 0, MiB);
  h.add(6, 3 * MiB - 4096, 2 * MiB);
  h.add(7, 10 * MiB, 128 * 1024);
  assert.deepEqual(h.onDiskOverlapping(MiB, 4096).map((w) => w.seq), []);
  assert.deepEqual(h.onDiskOverlapping(MiB - 1, 2).map((w) => w.seq), [5]);
  assert.deepEqual(h.onDiskOverlapping(0, 4 * MiB).map((w) => w.seq), [5, 6], 'each once, oldest first, across chunks');
  assert.deepEqual(h.onDiskOverlapping(5 * MiB - 4097, 1).map((w) => w.seq), [6]);
  assert.deepEqual(h.onDiskOverlapping(5 * MiB - 4096, 4096).map((w) => w.seq), [], 'the end is exclusive');
  assert.equal(h.bytes, 3 * MiB + 128 * 1024);
  h.markCopied(h.get(6)!);
  assert.deepEqual(h.onDiskOverlapping(0, 16 * MiB).map((w) => w.seq), [5, 7], 'a copied write no longer depends on the disk');
  assert.equal(h.get(6)!.copied, true);
  h.dropBelow(7);
  assert.equal(h.size, 1);
  assert.deepEqual(h.onDiskOverlapping(0, 16 * MiB).map((w) => w.seq), [7]);
  h.dropFrom(7);
  assert.equal(h.size, 0);
  assert.equal(h.bytes, 0);
  assert.deepEqual(h.onDiskOverlapping(0, 16 * MiB), []);
});

test('copies survive a reopen, a torn tail is cut, and segments go once their writes are acknowledged', async () => {
  await loadHashing();
  const dir = await mkdtemp(join(tmpdir(), 'tm-held-copies-'));
  try {
    const a = HeldCopies.open(dir, log);
    a.save(10, 4096, Buffer.alloc(200_000, 0xaa), false);
    a.save(12, 8192, Buffer.alloc(300_000, 0xbb), true);
    assert.equal(a.bytes, 500_000);
    a.close();
    const [name] = await readdir(dir);
    const whole = (await stat(join(dir, name))).size;
    // A third copy torn half way: cut on open, the two before it kept.
    await appendFile(join(dir, name), Buffer.alloc(5000, 0x01));
    const b = HeldCopies.open(dir, log);
    assert.equal((await stat(join(dir, name))).size, whole, 'torn tail cut');
    assert.deepEqual([...b.seqs()].sort(), [10, 12]);
    const got = Buffer.alloc(300_000);
    assert.equal(b.readInto(12, got, 0), true);
    assert.ok(got.equals(Buffer.alloc(300_000, 0xbb)));
    assert.equal(b.readInto(11, got, 0), false);
    b.save(13, 0, Buffer.alloc(4096, 0xcc), false);
    b.dropBelow(13);
    assert.deepEqual([...b.seqs()], [13]);
    b.dropBelow(14);
    assert.equal(b.bytes, 0);
    assert.equal((await stat(join(dir, name))).size, 0, 'the last segment is emptied once nothing in it is needed');
    b.close();
    // A copy cut short (a crash during its write): it is dropped, the one before it kept.
    const c = HeldCopies.open(dir, log);
    c.save(20, 0, Buffer.alloc(1000, 1), false);
    c.save(21, 0, Buffer.alloc(1000, 2), false);
    c.close();
    await truncate(join(dir, name), 1000 + 32 + 8 + 500);
    const d = HeldCopies.open(dir, log);
    assert.deepEqual([...d.seqs()], [20]);
    d.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
