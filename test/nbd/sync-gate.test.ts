import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncGate } from '../../core/nbd/sync-gate.ts';

function gateWithClock(): { gate: SyncGate; clock: { nowMs: number }; call: (ms: number) => void } {
  const clock = { nowMs: 100 };
  const gate = new SyncGate(1024, 1, 1000, 2, () => clock.nowMs);
  return {
    gate,
    clock,
    call: (ms) =>
      gate.run(() => {
        clock.nowMs += ms;
      }),
  };
}

test('calls run synchronously up to maxBytes while they stay fast', { timeout: 60_000 }, () => {
  const { gate, call } = gateWithClock();
  assert.equal(gate.allows(1024), true);
  assert.equal(gate.allows(1025), false);
  call(0.5);
  assert.equal(gate.allows(1), true);
  assert.equal(
    gate.run(() => 'value'),
    'value',
  );
});

test('one slow call between fast ones changes nothing (a descheduled process)', { timeout: 60_000 }, () => {
  const { gate, call } = gateWithClock();
  call(5);
  assert.equal(gate.allows(1), true);
  call(0.1);
  call(5);
  assert.equal(gate.allows(1), true);
});

test('slow calls in a row send calls to the thread pool for backoffMs, then sync resumes', { timeout: 60_000 }, () => {
  const { gate, clock, call } = gateWithClock();
  call(5);
  call(5);
  assert.equal(gate.allows(1), false);
  clock.nowMs += 999;
  assert.equal(gate.allows(1), false);
  clock.nowMs += 2;
  assert.equal(gate.allows(1), true);
  call(5);
  assert.equal(gate.allows(1), true, 'the count starts again after a backoff');
});

test('a call that throws is still timed and the error passes through', { timeout: 60_000 }, () => {
  const { gate, clock } = gateWithClock();
  for (let i = 0; i < 2; i++) {
    assert.throws(
      () =>
        gate.run(() => {
          clock.nowMs += 3;
          throw new Error('EIO');
        }),
      /EIO/,
    );
  }
  assert.equal(gate.allows(1), false);
});
