import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../../functions/local.ts';

it('owns its directory alone, keeps its admin token across restarts and replaces a broken one', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tidemark-local-'));
  try {
    const first = await startControlPlane({ dataDir });
    await assert.rejects(startControlPlane({ dataDir }), /already open/);
    const health = await fetch(`${first.url}/api/v1/health`);
    assert.deepEqual(await health.json(), { ok: true });
    await first.close();

    const second = await startControlPlane({ dataDir });
    assert.equal(second.adminToken, first.adminToken);
    await second.close();

    await writeFile(join(dataDir, 'admin.token'), 'opt_aaaaaaaaaaaaaaaaaaaa.forged\n');
    const third = await startControlPlane({ dataDir });
    assert.notEqual(third.adminToken, first.adminToken);
    const vaults = await fetch(`${third.url}/api/v1/vaults`, { headers: { authorization: `Bearer ${third.adminToken}` } });
    assert.equal(vaults.status, 200);
    await third.close();

    await writeFile(join(dataDir, 'control-plane.lock'), '999999999');
    const afterCrash = await startControlPlane({ dataDir });
    await afterCrash.close();
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
