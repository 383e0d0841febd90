import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PointIndex } from '../../master-target/points.ts';
import { thin } from '../../master-target/retention-tiers.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;

describe('retention tiers', () => {
  // A point every 10 s for three days (one ORDERED batch per point), then thinned at two moments.
  const start = Date.UTC(2030, 0, 1);
  const index = new PointIndex();
  const n = (3 * 24 * HOUR) / 10_000;
  for (let i = 1; i <= n; i++) index.addBatch(i, i, start + i * 10_000, true, []);
  const all = index.list();
  const policy = { fullSeconds: 3600 };

  it('keeps every point of the full tier, the newest of each minute to 24 h, the newest of each hour after', () => {
    const now = start + n * 10_000 + 1;
    const kept = thin(all, index, now, policy);
    const byAge = (lo: number, hi: number) => kept.filter((p) => now - Date.parse(p.time) >= lo && now - Date.parse(p.time) < hi);
    assert.equal(byAge(0, HOUR).length, all.filter((p) => now - Date.parse(p.time) < HOUR).length);
    const minuteTier = byAge(HOUR, 24 * HOUR);
    const minutes = new Set(minuteTier.map((p) => Math.floor(Date.parse(p.time) / MIN)));
    assert.equal(minutes.size, minuteTier.length, 'one point per minute');
    // The bucket cut by the tier boundary keeps its newest point before the boundary.
    for (const p of byAge(HOUR + MIN, 24 * HOUR)) assert.equal((Date.parse(p.time) - start) % MIN, 50_000, 'the newest point of its minute');
    assert.ok(minuteTier.length >= 23 * 60 - 1 && minuteTier.length <= 23 * 60 + 1, `${minuteTier.length} minute points`);
    const hourTier = byAge(24 * HOUR, Number.POSITIVE_INFINITY);
    const hours = new Set(hourTier.map((p) => Math.floor(Date.parse(p.time) / HOUR)));
    assert.equal(hours.size, hourTier.length, 'one point per hour');
    for (const p of byAge(25 * HOUR, Number.POSITIVE_INFINITY)) assert.equal((Date.parse(p.time) - start) % HOUR, HOUR - 10_000, 'the newest point of its hour');
    assert.ok(hourTier.length >= 47 && hourTier.length <= 49, `${hourTier.length} hour points`);
  });

  it('only ever drops points as time passes (a coarser tier keeps a subset of the finer one)', () => {
    for (const step of [HOUR / 2, 5 * HOUR, 25 * HOUR]) {
      const now = start + 40 * HOUR;
      const earlier = new Set(thin(all, index, now, policy).map((p) => p.seq));
      const later = thin(all, index, now + step, policy);
      for (const p of later) assert.ok(earlier.has(p.seq), `point ${p.seq} kept at +${step} ms but not before`);
    }
  });

  it('always keeps named bookmarks', () => {
    const idx = new PointIndex();
    idx.addBatch(1, 3, start, true, [{ seq: 2, point: { kind: 'bookmark', timeMs: start, name: 'before-upgrade' } }]);
    const kept = thin(idx.list(), idx, start + 48 * HOUR, policy);
    assert.ok(kept.some((p) => p.name === 'before-upgrade'));
  });
});
