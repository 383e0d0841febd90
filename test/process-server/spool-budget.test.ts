import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpoolBudget } from '../../process-server/wan/spool-budget.ts';

test('without a whole-spool limit, accepted batches never drive the reported use below what the spool holds', () => {
  let held = 0;
  const budget = new SpoolBudget(undefined, () => held);
  for (let i = 0; i < 3; i++) {
    assert.equal(budget.reserve(1000, held, 1), undefined);
    held += 1000;
    budget.release(1000);
  }
  assert.deepEqual(budget.status(), { usedBytes: 3000, limitBytes: null, level: 'ok' });
});

test('with a limit, a reservation counts until released and the levels follow the use', () => {
  let held = 0;
  const budget = new SpoolBudget(10_000, () => held);
  assert.equal(budget.reserve(8_500, held, 1), undefined);
  assert.equal(budget.status().usedBytes, 8_500);
  assert.equal(budget.status().level, 'warning');
  held += 8_500;
  budget.release(8_500);
  assert.equal(budget.status().usedBytes, 8_500);
  assert.match(budget.reserve(2_000, held, 1) ?? '', /spool full/);
  held = 0;
  assert.equal(budget.check().level, 'ok');
});
