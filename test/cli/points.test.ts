import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compact, type Point } from '../../cli/commands/points.ts';

const p = (seq: number, kind = 'crash', name?: string): Point => ({ id: String(seq), seq, time: `t${seq}`, kind, consistent: true, ...(name ? { name } : {}) });

test('consecutive write-boundary points collapse into runs; named and other kinds stand alone', () => {
  const runs = compact([p(1, 'crash', 'initial sync complete'), p(2), p(3), p(4), p(6), p(7, 'app'), p(8), p(9, 'bookmark', 'before upgrade')]);
  assert.deepEqual(runs.map((r) => [r.first.seq, r.last.seq, r.count]), [[1, 1, 1], [2, 4, 3], [6, 6, 1], [7, 7, 1], [8, 8, 1], [9, 9, 1]]);
});
