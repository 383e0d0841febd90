/** Machine records on disk follow the order their writes were asked in, whatever each write takes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { MachineStore } from '../../master-target/hypervisor/machine-store.ts';
import { MACHINE_RECORD_VERSION, type MachineRecord } from '../../master-target/hypervisor/adapter.ts';
import { scratchDir } from './support.ts';

function recordOf(name: string, state: MachineRecord['state']): MachineRecord {
  return {
    version: MACHINE_RECORD_VERSION, name, state, consoleLogPath: '/dev/null', overlayPaths: [], createdAt: new Date(0).toISOString(),
    settings: { name, cpus: 1, memoryMiB: 64, network: 'none', disks: [], boot: { mode: 'disk' } } as unknown as MachineRecord['settings'],
  };
}

test('saves not awaited land in call order; settled() waits for them; a removal is not undone by an earlier save', async () => {
  const dir = await scratchDir();
  try {
    const store = new MachineStore(dir);
    await store.init();
    const states: MachineRecord['state'][] = ['created', 'running', 'stopped'];
    for (let round = 0; round < 20; round++) {
      for (const state of states) void store.save(recordOf('m', state));
      await store.settled('m');
      assert.equal(JSON.parse(readFileSync(store.pathOf('m', '.json'), 'utf8')).state, 'stopped');
    }
    void store.save(recordOf('gone', 'running'));
    void store.save(recordOf('gone', 'stopped'));
    await store.remove('gone');
    assert.equal(existsSync(store.pathOf('gone', '.json')), false);
    assert.deepEqual((await store.loadAll()).map((r) => r.name), ['m']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
