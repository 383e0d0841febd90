/**
 * The `retention-shortened` condition: a short history alone (a young protection) raises
 * nothing; a history the master target shortened for space does, while it is shorter than the
 * policy's window; once it reaches back the whole window again, or the report does not say the
 * window was shortened, the alert clears.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { DiskPoints } from '../../core/control-plane/protocol.ts';
import { retentionConditionOf } from '../../functions/domain/alerts.ts';
import type { Disk, Policy } from '../../functions/domain/records.ts';

const NOW_MS = Date.parse('2030-06-08T12:00:00Z');
const DAY_S = 86400;

const disk: Disk = {
  id: 'dsk_db1disk0', name: 'disk0', sizeBytes: 1 << 30, state: 'CONTINUOUS', lagSeconds: 2, backlogBytes: 0, latestPoint: null, reportedAt: null,
};
const policy: Policy = {
  id: 'pol_gold', vaultId: 'vlt_one', name: 'gold', rpoThresholdSeconds: 60, retentionSeconds: 7 * DAY_S,
  appConsistentIntervalSeconds: null, bandwidthLimitBytesPerSecond: null, createdAt: '2030-01-01T00:00:00.000Z',
};

/** A report of a disk whose oldest kept point is `ageSeconds` old. */
function report(ageSeconds: number, shortenedForSpaceTime?: string): DiskPoints {
  const point = (seq: number, ms: number) => ({ id: String(seq), seq, time: new Date(ms).toISOString(), kind: 'crash' as const });
  const oldest = point(10, NOW_MS - ageSeconds * 1000);
  const newest = point(900, NOW_MS - 1000);
  return {
    diskId: disk.id, appliedSeq: 900, oldest, newest, tiers: { fullSeconds: 3600, minuteTierSeconds: DAY_S }, recent: [newest], marked: [],
    ...(shortenedForSpaceTime ? { shortenedForSpaceTime } : {}),
  };
}

it('raises nothing for a young protection whose history is short without any deletion for space', () => {
  const c = retentionConditionOf(disk, report(2 * DAY_S), policy, NOW_MS);
  assert.equal(c.kind, 'retention-shortened');
  assert.equal(c.active, false);
});

it('is active when the window was shortened for space and the history is shorter than the policy window', () => {
  const c = retentionConditionOf(disk, report(2 * DAY_S, '2030-06-08T11:00:00.000Z'), policy, NOW_MS);
  assert.equal(c.active, true);
  assert.equal(c.message, "disk disk0 keeps recovery points back to 2030-06-06T12:00:00.000Z only, not the policy's 7 d: "
    + 'the master target deleted older journal to stay within its space limits');
});

it('is not active once the kept history reaches back the whole window, shortened or not', () => {
  assert.equal(retentionConditionOf(disk, report(7 * DAY_S + 60, '2030-06-01T11:00:00.000Z'), policy, NOW_MS).active, false);
  // A second short of the window is still short.
  assert.equal(retentionConditionOf(disk, report(7 * DAY_S - 1, '2030-06-01T11:00:00.000Z'), policy, NOW_MS).active, true);
});

it('is not active for a disk missing from the report or one with no kept point', () => {
  assert.equal(retentionConditionOf(disk, undefined, policy, NOW_MS).active, false);
  assert.equal(retentionConditionOf(disk, { ...report(60, '2030-06-08T11:00:00.000Z'), oldest: null, newest: null, recent: [] }, policy, NOW_MS).active, false);
});
