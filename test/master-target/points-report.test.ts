/**
 * The site link's recovery-points report, read from a real master target over HTTP: once the
 * journal cap deleted segments inside the retention window, the disk's entry says so with
 * `shortenedForSpaceTime` (docs/control-plane-api.md), and the report is one the control
 * plane's schema accepts; before that, the field is absent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Assignments } from '../../core/control-plane/assignments.ts';
import { RecoveryPointsReport } from '../../core/control-plane/protocol.ts';
import { loadHashing } from '../../core/hash.ts';
import { silentLogger } from '../../core/log.ts';
import { seededRandom } from '../../core/seeded-random.ts';
import { encodeFrame, RecordType, type BatchInput, type BatchRecord } from '../../core/wire/frame.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { MasterTargetApi } from '../../master-target/site-link/master-target-api.ts';
import { buildPointsReport } from '../../master-target/site-link/points-report.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const DISK_BYTES = 4 * MiB;
const WRITE_BYTES = 256 * KiB;

let dir: string;
let mt: MasterTarget;

before(async () => {
  await loadHashing();
  dir = await mkdtemp(join(tmpdir(), 'tidemark-points-report-'));
  // A window of a century: only the journal cap can delete anything.
  mt = await startMasterTarget({
    dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, retentionSeconds: 100 * 365 * 86400, retentionFullSeconds: 100 * 365 * 86400,
    segmentBytes: 1 * MiB, keepFreeBytes: 0, journalMaxBytes: 3 * MiB, log: silentLogger,
  });
});
after(async () => {
  await mt.close();
  await rm(dir, { recursive: true, force: true });
});

/** A batch of four random (incompressible) 256 KiB writes, a minute after the one before. */
function batch(r: () => number, b: number): BatchInput {
  const records: BatchRecord[] = [];
  for (let i = 0; i < 4; i++) {
    const data = Buffer.allocUnsafe(WRITE_BYTES);
    for (let k = 0; k < WRITE_BYTES; k += 4) data.writeUInt32LE((r() * 2 ** 32) >>> 0, k);
    records.push({ type: RecordType.WRITE, offset: Math.floor(r() * (DISK_BYTES / WRITE_BYTES)) * WRITE_BYTES, data });
  }
  const timeMs = Date.UTC(2030, 0, 1) + b * 60_000;
  records.push({ type: RecordType.TAG, tag: { kind: 'crash', timeMs } });
  return { machine: 'db1', disk: 'disk0', firstSeq: 1 + b * 5, timeMs, diskBytes: DISK_BYTES, flags: 0, records };
}

async function post(b: BatchInput): Promise<void> {
  const res = await fetch(`${mt.url}/v1/streams/${b.machine}/${b.disk}/batches`, { method: 'POST', body: encodeFrame(b), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 200, await res.text());
}

it('carries shortenedForSpaceTime per disk once space limits deleted journal inside the window, and not before', async () => {
  const assignments = await Assignments.open(dir);
  await assignments.enable({
    v: 1, type: 'protection.enable', id: 'cmd-1', issuedAt: new Date().toISOString(),
    machine: { id: 'mch_db1', name: 'db1', hostname: 'db1', disks: [{ id: 'dsk_db1disk0', name: 'disk0', sizeBytes: DISK_BYTES }] },
    policy: { id: 'pol_gold', rpoThresholdSeconds: 60, retentionSeconds: 86400, appConsistentIntervalSeconds: null, bandwidthLimitBytesPerSecond: null },
    processServer: { id: 'srv_ps', url: null }, masterTarget: { id: 'srv_mt', url: mt.url },
  });
  const api = new MasterTargetApi(mt.url);
  const r = seededRandom(7);
  for (let b = 0; b < 2; b++) await post(batch(r, b));
  const early = await buildPointsReport(assignments, api);
  assert.equal(early[0].disks[0].diskId, 'dsk_db1disk0');
  assert.ok(early[0].disks[0].oldest, 'points are kept');
  assert.equal('shortenedForSpaceTime' in early[0].disks[0], false, 'nothing deleted for space yet');

  for (let b = 2; b < 24; b++) await post(batch(r, b));
  const late = await buildPointsReport(assignments, api);
  const d = late[0].disks[0];
  assert.match(d.shortenedForSpaceTime ?? '', /^20\d\d-\d\d-\d\dT.*Z$/, 'the journal cap shortened the window');
  assert.ok(d.oldest && d.oldest.seq > 1, `the oldest points went: oldest kept is ${d.oldest?.seq}`);
  assert.deepEqual(RecoveryPointsReport.parse({ machines: late }).machines[0].disks[0].shortenedForSpaceTime, d.shortenedForSpaceTime, 'the control plane accepts and keeps the field');
});
