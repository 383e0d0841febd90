/**
 * The two container images, built the way operators build them (scripts/container-images.sh)
 * on a base made from this host's node, then run with podman on loopback: health checks,
 * a non-root user, replication from an agent on the host through both containers, exports
 * equal to the source byte for byte, and recovery points that outlive the master target's
 * container because they live in its volume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeSampleDisk, sha256File, writeRandomBlocks, seededRandom } from '../../cli/demo/sample-disk.ts';
import { WriterGate } from '../../cli/demo/writer-gate.ts';
import { exportImage } from '../../cli/commands/export.ts';
import type { Point } from '../../cli/commands/points.ts';
import { freePort } from '../helpers/ports.ts';
import { REPO, startTidemark, waitUntil, type Running } from '../helpers/tidemark-process.ts';
import { Podman, run, unavailable } from './podman.ts';
import { requestJson } from '../../core/http/client.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { createCsr, generateKeyPair } from '../../core/tls/x509.ts';
import { startControlPlane, type LocalControlPlane } from '../../functions/local.ts';

const MiB = 1024 * 1024;
const DISK_BYTES = 32 * MiB;
const IMAGE_UID = 10001;
const PODMAN_HOST_PATHS = ['/var/lib/containers', join(homedir(), '.config', 'containers')];

const skip = await unavailable();

test('both images build on a local base, run as non-root, report healthy and replicate on loopback into a lasting volume', { skip, timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tm-containers-'));
  const podman = new Podman(join(dir, 'podman'));
  const tag = `test-${process.pid}`;
  const ps = `tm-ps-${tag}`;
  const mt = `tm-mt-${tag}`;
  const token = randomBytes(12).toString('hex');
  const [psPort, mtPort] = [await freePort(), await freePort()];
  const psUrl = `http://127.0.0.1:${psPort}`;
  const mtUrl = `http://127.0.0.1:${mtPort}`;
  let agent: Running | undefined;
  let cp: LocalControlPlane | undefined;
  const [psTls, mtTls] = [`${ps}-tls`, `${mt}-tls`];
  // Even with a private store, podman keeps a blob cache in /var/lib/containers and leaves a
  // folder in ~/.config/containers: remove those after if they were not there before.
  const hostPathsBefore = await Promise.all(PODMAN_HOST_PATHS.map((p) => stat(p).then(() => true, () => false)));
  const began = Date.now();
  const phases: string[] = [];
  let last = began;
  const phase = (name: string) => {
    phases.push(`${name} ${((Date.now() - last) / 1000).toFixed(1)} s`);
    last = Date.now();
  };
  try {
    const build = await run('bash', [join(REPO, 'scripts', 'container-images.sh'), '--local-base', '--root', podman.root, '--tag', tag], { timeoutMs: 180_000 });
    assert.equal(build.code, 0, `image build failed:\n${build.stdout}\n${build.stderr}`);
    phase('build');
    const sizes = await podman.ok(['images', '--format', '{{.Repository}} {{.Size}}', '--filter', `reference=localhost/tidemark-*:${tag}`]);
    t.diagnostic(`images: ${sizes.split('\n').join('; ')}`);
    for (const role of ['process-server', 'master-target']) {
      const [image] = JSON.parse(await podman.ok(['image', 'inspect', `localhost/tidemark-${role}:${tag}`])) as {
        Config: { User: string; Volumes: Record<string, unknown> }; Healthcheck?: { Test: string[] };
      }[];
      assert.equal(image.Config.User, 'tidemark');
      assert.deepEqual(Object.keys(image.Config.Volumes), ['/data']);
      assert.deepEqual(image.Healthcheck?.Test, ['CMD', '/usr/local/bin/node', '/opt/tidemark/healthcheck.mjs']);
    }

    const startMasterTarget = () => podman.ok([
      'run', '-d', '--name', mt, '--network', 'host', '-v', `${mt}:/data`,
      '-e', `TIDEMARK_LISTEN=127.0.0.1:${mtPort}`, '-e', `TIDEMARK_TOKEN=${token}`, '-e', 'TIDEMARK_RETENTION=2h',
      `localhost/tidemark-master-target:${tag}`,
    ]);
    await startMasterTarget();
    await podman.ok([
      'run', '-d', '--name', ps, '--network', 'host', '-v', `${ps}:/data`,
      '-e', `TIDEMARK_LISTEN=127.0.0.1:${psPort}`, '-e', `TIDEMARK_TOKEN=${token}`, '-e', `TIDEMARK_MASTER_TARGET=${mtUrl}`,
      `localhost/tidemark-process-server:${tag}`,
    ]);
    await healthy(podman, mt);
    await healthy(podman, ps);
    phase('start until healthy');
    for (const name of [mt, ps]) assert.equal(await serverUid(podman, name), IMAGE_UID, `${name} runs as the image's user`);
    // The check fails when the server does not answer, or "healthy" above would mean nothing.
    const closedPort = await freePort();
    const failing = await podman.run(['exec', '-e', `TIDEMARK_LISTEN=127.0.0.1:${closedPort}`, mt, '/usr/local/bin/node', '/opt/tidemark/healthcheck.mjs']);
    assert.equal(failing.code, 1);
    assert.match(failing.stderr, new RegExp(`health check: http://127.0.0.1:${closedPort}/healthz: .*ECONNREFUSED`));

    // An agent from this checkout, in scan mode, against the process server's container.
    const disk = join(dir, 'source.img');
    await makeSampleDisk(disk, DISK_BYTES, 7);
    const hashes = new Map<number, string>([[0, await sha256File(disk)]]);
    const gate = new WriterGate(dir);
    await gate.init();
    agent = startTidemark([
      'agent', '--state', join(dir, 'agent'), '--process-server', psUrl, '--machine', 'web-01', '--disk', disk,
      '--mode', 'scan', '--interval', '2', '--freeze-cmd', gate.freezeCmd, '--thaw-cmd', gate.thawCmd,
    ], { TIDEMARK_TOKEN: token });
    const points = async (): Promise<Point[]> => {
      const res = await fetch(`${mtUrl}/v1/machines/web-01/disks/disk0/points`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new Error(`points: ${res.status}`);
      return ((await res.json()) as { points: Point[] }).points;
    };
    const settled = (generation: number) => waitUntil(`a scan of state ${generation} to reach the master target`, async () => {
      const gens = await gate.generations();
      return gens.includes(generation) && (await points()).length >= gens.length ? true : undefined;
    }, 90_000);
    await settled(0);
    await gate.write(1, async () => {
      await writeRandomBlocks(disk, DISK_BYTES, 60, seededRandom(7));
      hashes.set(1, await sha256File(disk));
    });
    await settled(1);
    await agent.stop();
    const generations = await gate.generations();
    const all = await waitUntil('every frozen scan to reach the master target', async () => {
      const p = await points();
      return p.length >= generations.length ? p : undefined;
    });
    assert.equal(all.length, generations.length, 'one recovery point per scan');
    const first = all[0];
    const last = all[all.length - 1];
    assert.equal(generations[0], 0);
    assert.equal(generations[generations.length - 1], 1);
    const exported = async (p: Point) => {
      const out = join(dir, `export-${p.id}.img`);
      const r = await exportImage(mtUrl, 'web-01', 'disk0', p.id, out, token);
      assert.equal(r.sha256, await sha256File(out));
      await rm(out);
      return r.sha256;
    };
    assert.equal(await exported(first), hashes.get(0), 'the first point equals the source before the change');
    assert.equal(await exported(last), hashes.get(1), 'the last point equals the source after the change');

    phase('replicate and export');
    // Data lives in the volumes, owned by the image's user: a new master target container on
    // the same volume still has every point.
    for (const name of [mt, ps]) {
      const mount = await podman.ok(['volume', 'inspect', '--format', '{{.Mountpoint}}', name]);
      assert.equal((await stat(mount)).uid, IMAGE_UID);
      assert.ok((await readdir(mount)).length > 0, `${name}'s volume holds its data`);
    }
    await podman.ok(['stop', '--time', '10', mt]);
    assert.equal(await podman.ok(['inspect', '--format', '{{.State.ExitCode}}', mt]), '0', 'SIGTERM stops the master target cleanly');
    await podman.ok(['rm', mt]);
    await startMasterTarget();
    await healthy(podman, mt);
    assert.deepEqual(await points(), all);
    assert.equal(await exported(first), hashes.get(0), 'the first point survives the master target container');
    phase('replace master target, export');

    // Enrolled through the environment with https:// URLs, both serve mutual TLS from the
    // bundled CLI, the process server dialling the master target with its certificate.
    cp = await startControlPlane({ dataDir: join(dir, 'cp'), port: 0 });
    const admin = async (path: string, body: unknown) => {
      const r = await requestJson<any>(`${cp!.url}/api/v1`, 'POST', path, body, { token: cp!.adminToken });
      assert.ok(r.status < 300, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const vault = await admin('/vaults', { name: 'v' });
    const { key } = await admin(`/vaults/${vault.id}/registration-keys`, {});
    const [psTlsUrl, mtTlsUrl] = [`https://127.0.0.1:${await freePort()}`, `https://127.0.0.1:${await freePort()}`];
    const enrolled = (name: string, url: string, extra: string[]) => [
      'run', '-d', '--name', name, '--network', 'host', '-v', `${name}:/data`, '-e', `TIDEMARK_LISTEN=${new URL(url).host}`,
      '-e', `TIDEMARK_CONTROL_PLANE=${cp!.url}`, '-e', `TIDEMARK_KEY=${key}`, '-e', `TIDEMARK_NAME=${name}`, '-e', `TIDEMARK_URL=${url}`, ...extra,
    ];
    await podman.ok(enrolled(mtTls, mtTlsUrl, [`localhost/tidemark-master-target:${tag}`]));
    await podman.ok(enrolled(psTls, psTlsUrl, ['-e', `TIDEMARK_MASTER_TARGET=${mtTlsUrl}`, `localhost/tidemark-process-server:${tag}`]));
    await healthy(podman, mtTls);
    await healthy(podman, psTls);
    const keys = await generateKeyPair();
    const issued = await admin(`/vaults/${vault.id}/operator-certificates`, { name: 'ops', csr: await createCsr(keys, 'ops') });
    const operator: TlsIdentity = { key: keys.privateKeyPem, cert: issued.certificate, ca: issued.caCertificate };
    const noCert = { ...operator, cert: '', key: '' };
    for (const [url, path] of [[psTlsUrl, '/v1/status'], [mtTlsUrl, '/v1/machines']] as const) {
      assert.equal((await requestJson(url, 'GET', '/healthz', undefined, { tls: noCert })).status, 200);
      assert.equal((await requestJson(url, 'GET', path, undefined, { tls: noCert })).status, 401, `${url}${path} without a certificate`);
      assert.equal((await requestJson(url, 'GET', path, undefined, { tls: operator })).status, 200, `${url}${path} as the operator`);
    }
    phase('TLS pair from the environment');
    t.diagnostic(`${phases.join(', ')}; ${all.length} points`);
  } catch (e) {
    const logs = await Promise.all([mt, ps, mtTls, psTls].map(async (n) => `--- ${n} ---\n${(await podman.run(['logs', '--tail', '40', n])).stderr.slice(-3000)}`));
    (e as Error).message += `\n${logs.join('\n')}\n--- agent ---\n${agent?.stderr().slice(-3000) ?? ''}`;
    throw e;
  } finally {
    await agent?.stop();
    await podman.run(['rm', '--force', '--time', '0', mt, ps, mtTls, psTls]);
    await podman.run(['volume', 'rm', '--force', mt, ps, mtTls, psTls]);
    await cp?.close();
    await podman.run(['rmi', '--force', `localhost/tidemark-process-server:${tag}`, `localhost/tidemark-master-target:${tag}`, `localhost/tidemark-node-base:${tag}`]);
    await podman.run(['system', 'reset', '--force'], 60_000);
    await rm(dir, { recursive: true, force: true });
    for (const [i, p] of PODMAN_HOST_PATHS.entries()) if (!hostPathsBefore[i]) await rm(p, { recursive: true, force: true });
    t.diagnostic(`cleanup ${((Date.now() - last) / 1000).toFixed(1)} s; whole test ${((Date.now() - began) / 1000).toFixed(1)} s`);
  }
});

/**
 * Waits for the image's health check to pass. podman schedules health checks with systemd
 * timers, which run `podman healthcheck run`; without systemd (these machines) the test runs
 * that same command itself, then reads the state podman recorded.
 */
async function healthy(podman: Podman, name: string): Promise<void> {
  await waitUntil(`${name} to report healthy`, async () => {
    await podman.run(['healthcheck', 'run', name]);
    const status = await podman.ok(['inspect', '--format', '{{.State.Health.Status}}', name]);
    return status === 'healthy' ? true : undefined;
  }, 60_000);
}

/** The uid the container's main process runs as, read from the host's /proc. */
async function serverUid(podman: Podman, name: string): Promise<number> {
  const pid = await podman.ok(['inspect', '--format', '{{.State.Pid}}', name]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}
