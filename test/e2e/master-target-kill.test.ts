import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replicationScenario } from './scenario.ts';

test('the master target killed -9 mid-stream and restarted: every point stays exact', { timeout: 300_000 }, async () => {
  const r = await replicationScenario({ seed: 37, chaos: { target: 'master-target', kills: 4 } });
  assert.equal(r.kills, 4);
});
