import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestControlPlane, type TestControlPlane } from './support/control-plane.ts';

let cp: TestControlPlane;
before(async () => {
  cp = await startTestControlPlane();
});
after(() => cp.close());

describe('vaults', () => {
  it('creates a vault: 201 with its id, then reads and lists it', async () => {
    const created = await cp.call('POST', '/api/v1/vaults', { name: 'prod' });
    assert.equal(created.status, 201);
    assert.match(created.body.id, /^vlt_[a-z2-7]{20}$/);
    assert.equal(created.body.name, 'prod');
    const one = await cp.call('GET', `/api/v1/vaults/${created.body.id}`);
    assert.deepEqual(one.body, created.body);
    const all = await cp.call('GET', '/api/v1/vaults');
    assert.ok(all.body.items.some((v: { id: string }) => v.id === created.body.id));
  });

  it('answers 400 naming the field when the body does not fit the schema', async () => {
    const r = await cp.call('POST', '/api/v1/vaults', { name: 42 });
    assert.equal(r.status, 400);
    assert.equal(r.body.field, 'name');
    assert.match(r.body.error, /name/);
    const missing = await cp.call('POST', '/api/v1/vaults', {});
    assert.equal(missing.status, 400);
    assert.equal(missing.body.field, 'name');
  });

  it('answers 400 for malformed json', async () => {
    const r = await cp.call('POST', '/api/v1/vaults', '{"name": ');
    assert.equal(r.status, 400);
    assert.match(r.body.error, /malformed json/);
  });

  it('answers 404 for an unknown id and for something that is not an id at all', async () => {
    assert.equal((await cp.call('GET', '/api/v1/vaults/vlt_aaaaaaaaaaaaaaaaaaaa')).status, 404);
    for (const bad of ['..%2F..%2Fetc', 'vlt_', 'x'.repeat(100), '%2E%2E']) {
      const r = await cp.call('GET', `/api/v1/vaults/${bad}`);
      assert.equal(r.status, 404, bad);
    }
    assert.equal((await cp.call('GET', '/api/v1/vaults/vlt_aaaaaaaaaaaaaaaaaaaa/machines')).status, 404);
  });

  it('answers 404 with a json body for an unknown endpoint', async () => {
    const r = await cp.call('GET', '/api/v1/nothing-here');
    assert.equal(r.status, 404);
    assert.match(r.body.error, /no endpoint/);
  });
});

describe('credentials and roles', () => {
  it('answers 401 without a credential, with a wrong one and with a malformed one', async () => {
    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, null)).status, 401);
    const wrong = cp.adminToken.slice(0, -4) + 'AAAA';
    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, wrong)).status, 401);
    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, 'nonsense')).status, 401);
    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, 'crd_aaaaaaaaaaaaaaaaaaaa.x')).status, 401);
  });

  it('lets a viewer read but not act, and an operator act but not administer (403)', async () => {
    const viewer = await cp.call('POST', '/api/v1/operator-tokens', { name: 'auditor', role: 'viewer' });
    assert.equal(viewer.status, 201);
    assert.ok(viewer.body.token.startsWith(`${viewer.body.id}.`));
    const op = await cp.call('POST', '/api/v1/operator-tokens', { name: 'on-call', role: 'operator' });

    assert.equal((await cp.call('GET', '/api/v1/vaults', undefined, viewer.body.token)).status, 200);
    const denied = await cp.call('POST', '/api/v1/vaults', { name: 'x' }, viewer.body.token);
    assert.equal(denied.status, 403);
    assert.match(denied.body.error, /admin role/);

    const vault = (await cp.call('POST', '/api/v1/vaults', { name: 'roles' })).body;
    const policy = { name: 'p', rpoThresholdSeconds: 60, retentionSeconds: 86400 };
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vault.id}/policies`, policy, viewer.body.token)).status, 403);
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vault.id}/policies`, policy, op.body.token)).status, 201);
    assert.equal((await cp.call('POST', `/api/v1/vaults/${vault.id}/registration-keys`, {}, op.body.token)).status, 403);
  });

  it('never returns secrets or their hashes when listing tokens', async () => {
    const r = await cp.call('GET', '/api/v1/operator-tokens');
    assert.equal(r.status, 200);
    const text = JSON.stringify(r.body);
    assert.doesNotMatch(text, /secretSha256|"token"/);
  });
});

describe('audit log', () => {
  it('records operator actions with the actor, newest first', async () => {
    const vault = (await cp.call('POST', '/api/v1/vaults', { name: 'audited' })).body;
    cp.clock.ms += 1000;
    await cp.call('POST', `/api/v1/vaults/${vault.id}/policies`, { name: 'gold', rpoThresholdSeconds: 30, retentionSeconds: 3600 });
    const log = await cp.call('GET', `/api/v1/vaults/${vault.id}/audit`);
    assert.deepEqual(log.body.items.map((e: { action: string }) => e.action), ['policy.create', 'vault.create']);
    assert.equal(log.body.items[0].actor.name, 'test admin');
    const global = await cp.call('GET', '/api/v1/audit?limit=5');
    assert.ok(global.body.items.every((e: { action: string }) => e.action === 'operator-token.create'));
  });
});

describe('openapi', () => {
  it('serves its document, listing the site endpoints and component schemas', async () => {
    const r = await cp.call('GET', '/api/v1/openapi.json', undefined, null);
    assert.equal(r.status, 200);
    assert.equal(r.body.info.version, '1');
    for (const p of ['/vaults', '/enroll', '/site/commands', '/site/heartbeat', '/vaults/{vaultId}/jobs']) assert.ok(r.body.paths[p], p);
    assert.ok(r.body.components.schemas.Job);
    assert.ok(r.body.components.securitySchemes.bearer);
  });

  it('validates query parameters with a 400 naming them', async () => {
    const vault = (await cp.call('POST', '/api/v1/vaults', { name: 'q' })).body;
    const r = await cp.call('GET', `/api/v1/vaults/${vault.id}/audit?limit=0`);
    assert.equal(r.status, 400);
    assert.equal(r.body.field, 'limit');
  });
});
