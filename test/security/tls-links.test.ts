/**
 * Agent → process server → master target over mutual TLS with the vault CA pinned, on
 * 127.0.0.1: wrong certificates on either side, every endpoint but /healthz needing one, each
 * component held to its own resources, and a replayed batch that changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getStream, postBinary, requestJson, PeerUnreachableError } from '../../core/http/client.ts';
import { silentLogger } from '../../core/log.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { encodeFrame, RecordType } from '../../core/wire/frame.ts';
import { startMasterTarget, type MasterTarget } from '../../master-target/server.ts';
import { startProcessServer, type ProcessServer } from '../../process-server/server.ts';
import { waitUntil } from '../helpers/tidemark-process.ts';
import { makeVault, type TestVault } from './support.ts';

const DISK_BYTES = 1 << 20;
let dir: string;
let vault: TestVault;
let other: TestVault;
let mt: MasterTarget;
let ps: ProcessServer;
let psId: string;
let psIdentity: TlsIdentity;
let agentWeb: TlsIdentity;
let agentDb: TlsIdentity;
let operator: TlsIdentity;
let strangerPs: TlsIdentity & { id: string };
/** The machines whose streams each process server may ship (what the control plane assigned). */
const shipsFor = new Map<string, string>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-tls-'));
  [vault, other] = await Promise.all([makeVault('a'), makeVault('b')]);
  const mtId = await vault.issue('master-target', 'mt1', ['127.0.0.1']);
  const issued = await vault.issue('process-server', 'ps1', ['127.0.0.1']);
  psId = issued.id;
  psIdentity = issued;
  strangerPs = await vault.issue('process-server', 'ps2', ['127.0.0.1']);
  [agentWeb, agentDb, operator] = await Promise.all([vault.issue('agent', 'web-01'), vault.issue('agent', 'db-01'), vault.issue('operator', 'ops')]);
  shipsFor.set('web-01', psId);
  shipsFor.set('db-01', psId);
  mt = await startMasterTarget({
    dataDir: join(dir, 'mt'), host: '127.0.0.1', port: 0, retentionSeconds: 3600, log: silentLogger,
    tls: mtId, peers: { vaultId: vault.vaultId, selfId: mtId.id, shipsFor: (m) => shipsFor.get(m) },
  });
  ps = await startProcessServer({
    dataDir: join(dir, 'ps'), host: '127.0.0.1', port: 0, masterTargetUrl: mt.url, log: silentLogger,
    tls: { identity: psIdentity, vaultId: vault.vaultId },
  });
});

after(async () => {
  await ps?.close();
  await mt?.close();
  await Promise.all([vault?.close(), other?.close()]);
  await rm(dir, { recursive: true, force: true });
});

function frame(machine: string, firstSeq: number, fill: number): Buffer {
  return encodeFrame({
    machine, disk: 'disk0', firstSeq, timeMs: Date.now(), diskBytes: DISK_BYTES, compress: false,
    records: [{ type: RecordType.WRITE, offset: 65536, data: Buffer.alloc(65536, fill) }],
  });
}

const get = (url: string, path: string, tls?: TlsIdentity) => requestJson<any>(url, 'GET', path, undefined, { tls, timeoutMs: 10_000 });

/** SHA-256 of the replica's bytes now, read through the master target's export. */
async function replicaHash(): Promise<string> {
  const res = await getStream(mt.url, '/v1/machines/web-01/disks/disk0/image?at=latest', { tls: operator });
  return createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex');
}

describe('servers', () => {
  it('are HTTPS and need a certificate of the vault for everything but /healthz', async () => {
    assert.match(ps.url, /^https:/);
    assert.match(mt.url, /^https:/);
    const noCert = { ...operator, cert: '', key: '' } as TlsIdentity; // trusts the CA, presents nothing
    for (const url of [ps.url, mt.url]) {
      assert.equal((await get(url, '/healthz', noCert)).status, 200);
      const r = await get(url, url === ps.url ? '/v1/status' : '/v1/machines', noCert);
      assert.equal(r.status, 401, JSON.stringify(r.body));
    }
    assert.equal((await get(ps.url, '/v1/status', operator)).status, 200);
    assert.equal((await get(mt.url, '/v1/machines', operator)).status, 200);
  });

  it("refuse a client whose certificate comes from another vault's CA", async () => {
    const foreign = await other.issue('operator', 'ops');
    // The client trusts our CA (so that it reaches the app) but presents the other vault's certificate.
    const trick = { ...foreign, ca: agentWeb.ca };
    assert.equal((await get(ps.url, '/v1/streams/web-01/disk0', trick)).status, 401);
    assert.equal((await get(mt.url, '/v1/machines', trick)).status, 401);
    const foreignAgent = { ...(await other.issue('agent', 'web-01')), ca: agentWeb.ca };
    assert.equal((await postBinary(ps.url, '/v1/streams/web-01/disk0/batches', frame('web-01', 1, 9), { tls: foreignAgent })).status, 401);
  });

  it('are refused by a client when their certificate is not from its pinned CA', async () => {
    const foreign = await other.issue('agent', 'web-01');
    await assert.rejects(get(ps.url, '/v1/streams/web-01/disk0', foreign), (err: Error) => {
      assert.ok(err instanceof PeerUnreachableError);
      assert.match(err.message, /certificate is not from this vault's CA/);
      return true;
    });
    await assert.rejects(postBinary(mt.url, '/v1/streams/web-01/disk0/batches', frame('web-01', 1, 9), { tls: foreign }), /not from this vault's CA/);
  });
});

describe('each component acts only on its own resources', () => {
  it("an agent writes only its own machine's disks", async () => {
    assert.equal((await get(ps.url, '/v1/streams/web-01/disk0', agentWeb)).status, 200);
    const other = await get(ps.url, '/v1/streams/db-01/disk0', agentWeb);
    assert.equal(other.status, 403);
    assert.match(other.body.error, /machine web-01, not db-01/);
    assert.equal((await postBinary(ps.url, '/v1/streams/db-01/disk0/batches', frame('db-01', 1, 1), { tls: agentWeb })).status, 403);
    assert.equal((await get(ps.url, '/v1/status', agentWeb)).status, 403);
    assert.equal((await get(mt.url, '/v1/machines', agentWeb)).status, 403, 'agents have nothing to do at the master target');
  });

  it('a process server ships only the streams assigned to it', async () => {
    const batch = frame('web-01', 1, 5);
    const refused = await postBinary<any>(mt.url, '/v1/streams/web-01/disk0/batches', batch, { tls: strangerPs });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error, /not assigned to process server ps2/);
    assert.equal((await get(mt.url, '/v1/streams/web-01/disk0', strangerPs)).status, 403);
    assert.equal((await get(mt.url, '/v1/machines', strangerPs)).status, 403, 'nor read anything else');
  });
});

describe('a replayed batch', () => {
  it('is acknowledged as held and changes nothing; under another machine\'s certificate it is refused', async () => {
    const first = frame('web-01', 1, 0xa1);
    const second = frame('web-01', 2, 0xb2);
    const send = (b: Buffer, tls = agentWeb, machine = 'web-01') => postBinary<any>(ps.url, `/v1/streams/${machine}/disk0/batches`, b, { tls });
    assert.deepEqual((await send(first)).body, { nextSeq: 2 });
    assert.deepEqual((await send(second)).body, { nextSeq: 3 });
    const applied = async () => (await get(mt.url, '/v1/streams/web-01/disk0', operator)).body.nextSeq as number;
    await waitUntil('both batches at the master target', async () => (await applied()) === 3 || undefined, 20_000);
    const before = await replicaHash();
    const expected = Buffer.alloc(DISK_BYTES);
    expected.fill(0xb2, 65536, 131072);
    assert.equal(before, createHash('sha256').update(expected).digest('hex'), 'the replica holds the second batch');

    // The captured first batch, sent again by its agent: held already, nothing written.
    const again = await send(first);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { nextSeq: 3, duplicate: true });
    // ... and straight to the master target by the process server that ships it.
    const direct = await postBinary<any>(mt.url, '/v1/streams/web-01/disk0/batches', first, { tls: psIdentity });
    assert.deepEqual(direct.body, { nextSeq: 3, duplicate: true });

    // Under another machine's certificate: refused on web-01's path and on its own.
    assert.equal((await send(first, agentDb)).status, 403);
    const asOwn = await send(first, agentDb, 'db-01');
    assert.equal(asOwn.status, 400);
    assert.match(asOwn.body.error, /frame is for web-01\/disk0/);

    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await applied(), 3);
    assert.equal(await replicaHash(), before, 'the replica did not change by a byte');
  });
});


describe('a server calling its own API on loopback', () => {
  it('checks its certificate against the host it enrolled with (serverHost), not the one dialled', async () => {
    const named = await vault.issue('master-target', 'mt-named', ['dr-site.example']);
    const self = await startMasterTarget({
      dataDir: join(dir, 'mt-named'), host: '127.0.0.1', port: 0, retentionSeconds: 3600, log: silentLogger,
      tls: named, peers: { vaultId: vault.vaultId, selfId: named.id },
    });
    try {
      await assert.rejects(get(self.url, '/v1/machines', named), /not from this vault's CA/);
      assert.equal((await get(self.url, '/v1/machines', { ...named, serverHost: 'dr-site.example' })).status, 200);
      await assert.rejects(get(self.url, '/v1/machines', { ...named, serverHost: 'elsewhere.example' }), /not from this vault's CA/);
    } finally {
      await self.close();
    }
  });
});
