/**
 * `PointIndex.newest`, which the points summary (the control plane's timeline) reads: for any
 * mix of ordered ranges and tags it returns what `list` returns, newest first, from any seq
 * down; its marked-only form returns the tags other than crash.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PointIndex } from '../../master-target/points.ts';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

it('lists the newest points of ranges and tags like list() does, newest first', () => {
  for (let round = 0; round < 30; round++) {
    const rnd = seeded(round + 1);
    const idx = new PointIndex();
    let seq = 1;
    for (let b = 0; b < 40; b++) {
      const n = 1 + Math.floor(rnd() * 5);
      const ordered = rnd() < 0.6;
      const tags = [];
      if (rnd() < 0.5) tags.push({ seq: seq + n - 1, point: { kind: rnd() < 0.5 ? 'app' : rnd() < 0.5 ? 'bookmark' : 'crash', timeMs: 1000 * b, ...(rnd() < 0.3 ? { name: `b${b}` } : {}) } });
      idx.addBatch(seq, seq + n - 1, 1000 * b, ordered, tags);
      seq += n;
    }
    const all = idx.list();
    for (const upTo of [seq - 1, Math.floor(seq / 2), 1]) {
      const expected = all.filter((p) => p.seq <= upTo).reverse();
      assert.deepEqual(idx.newest(10_000, upTo), expected, `round ${round}, up to ${upTo}`);
      assert.deepEqual(idx.newest(7, upTo), expected.slice(0, 7));
      assert.deepEqual(idx.newest(10_000, upTo, true), expected.filter((p) => p.kind !== 'crash'));
    }
  }
});
