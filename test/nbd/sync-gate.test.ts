import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncGate } from '../../core/nbd/sync-gate.ts';

test('calls run synchronously up to maxBytes while they stay fast', () => {
  let nowMs = 0;
  const gate = new SyncGate(1024, 1, 1000, () => nowMs);
  assert.equal(gate.allows(1024), true);
  assert.equal(gate.allows(1025), false);
  assert.equal(
    gate.run(() => {
      nowMs += 0.5;
      return 'fast';
    }),
    'fast',
  );
  assert.equal(gate.allows(1), true);
});

test('a slow call sends calls to the thread pool for backoffMs, then sync resumes', () => {
  let nowMs = 100;
  const gate = new SyncGate(1024, 1, 1000, () => nowMs);
  gate.run(() => {
    nowMs += 5;
  });
  assert.equal(gate.allows(1), false);
  nowMs += 999;
  assert.equal(gate.allows(1), false);
  nowMs += 2;
  assert.equal(gate.allows(1), true);
});

test('a call that throws is still timed and the error passes through', () => {
  let nowMs = 0;
  const gate = new SyncGate(1024, 1, 1000, () => nowMs);
  assert.throws(
    () =>
      gate.run(() => {
        nowMs += 3;
        throw new Error('EIO');
      }),
    /EIO/,
  );
  assert.equal(gate.allows(1), false);
});
