import { test } from 'node:test';
import assert from 'node:assert/strict';
import { replicationScenario } from './scenario.ts';

test('the process server killed -9 mid-stream and restarted: nothing acknowledged is lost', { timeout: 300_000 }, async () => {
  const r = await replicationScenario({ seed: 23, chaos: { target: 'process-server', kills: 4 } });
  assert.equal(r.kills, 4);
});
