/**
 * Push install over SSH: a real process server pushes the agent to a local sshd on 127.0.0.1
 * (its own config and host key, a temporary user key), which installs into a scratch root and
 * enrolls with a real `tidemark up`. Unknown host keys, refused keys and a failing install
 * are reported with their reasons; the route is for operators only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import { runTidemark, startTidemark, type Running } from '../helpers/tidemark-process.ts';
import { agentBundle, run, startUp, tree, type UpForTest } from './support.ts';

const TOKEN = 'push-test-token';
const isRoot = process.getuid?.() === 0;
let dir = '';
let up: UpForTest;
let ps: Running;
let psUrl = '';
let sshd: ChildProcess | undefined;
let sshdLog = '';
let sshPort = 0;
let knownHostsLine = '';

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`sshd did not listen on ${port}: ${sshdLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (!isRoot) return;
  dir = await mkdtemp(join(tmpdir(), 'tidemark-push-'));
  const ssh = join(dir, 'ssh');
  await mkdir(ssh, { mode: 0o700 });
  for (const name of ['host_key', 'user_key', 'stranger_key']) {
    const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(ssh, name)]);
    assert.equal(r.code, 0, r.stderr);
  }
  await writeFile(join(ssh, 'authorized_keys'), await readFile(join(ssh, 'user_key.pub')), { mode: 0o600 });
  sshPort = await freePort();
  await writeFile(join(ssh, 'sshd_config'), [
    `Port ${sshPort}`, 'ListenAddress 127.0.0.1', `HostKey ${join(ssh, 'host_key')}`, `PidFile ${join(ssh, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'PubkeyAuthentication yes',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password',
    'Subsystem sftp /usr/lib/openssh/sftp-server', 'LogLevel ERROR', '',
  ].join('\n'));
  // sshd insists on its privilege separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(ssh, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshd.stderr!.on('data', (d: Buffer) => (sshdLog += d.toString()));
  await waitForPort(sshPort, 10_000);
  const hostPub = (await readFile(join(ssh, 'host_key.pub'), 'utf8')).trim().split(' ');
  knownHostsLine = `[127.0.0.1]:${sshPort} ${hostPub[0]} ${hostPub[1]}\n`;
  await writeFile(join(dir, 'known_hosts'), knownHostsLine);

  up = await startUp(join(dir, 'tm'));
  const b = await agentBundle();
  const psPort = await freePort();
  psUrl = `http://127.0.0.1:${psPort}`;
  // A lab process server (token, plain http): it only pushes installs here and never ships, and
  // without a certificate of the vault it could not reach `up`'s TLS master target anyway.
  ps = startTidemark(['process-server', '--data', join(dir, 'ps'), '--listen', `127.0.0.1:${psPort}`, '--master-target', `http://127.0.0.1:${await freePort()}`, '--agent-dir', b.dir],
    { TIDEMARK_TOKEN: TOKEN, TIDEMARK_LOG_LEVEL: 'warn' });
  await ps.waitFor(/listening on/);
});

after(async () => {
  if (sshd && sshd.exitCode === null) {
    sshd.kill('SIGTERM');
    await new Promise((r) => sshd!.once('exit', r));
  }
  await ps?.stop();
  await up?.up.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  await rm((await agentBundle()).dir, { recursive: true, force: true });
});

function push(extra: string[], root: string, o: { key?: string; identity?: string; machine?: string } = {}) {
  return runTidemark(['push-install', '--process-server', psUrl, '--host', '127.0.0.1', '--port', String(sshPort), '--user', 'root',
    '--identity', o.identity ?? join(dir, 'ssh', 'user_key'), '--control-plane', up.cpUrl, '--key', o.key ?? up.key,
    '--machine', o.machine ?? 'push-01', '--disk', join(dir, 'disk.img'), '--remote-root', root, ...extra], { TIDEMARK_TOKEN: TOKEN });
}

async function scratch(name: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hostname'), 'push-01\n');
  return root;
}

test('pushes the agent over SSH into a scratch root: steps reported, machine enrolled, nothing left in /tmp', { skip: !isRoot && 'needs root to run a local sshd', timeout: 120_000 }, async () => {
  await writeFile(join(dir, 'disk.img'), Buffer.alloc(2 * 1024 * 1024, 1));
  const root = await scratch('remote-1');
  const t0 = Date.now();
  const r = await push(['--known-hosts', join(dir, 'known_hosts')], root);
  const pushMs = Date.now() - t0;
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n--- sshd ---\n${sshdLog}`);
  assert.match(r.stdout, /push install psh_\w+: root@127\.0\.0\.1:\d+/);
  assert.match(r.stdout, /connect: connecting to root@127\.0\.0\.1/);
  assert.match(r.stdout, /copy: copying the agent \(\d+ KiB\) and install\.sh/);
  assert.match(r.stdout, /install: running install\.sh/);
  assert.match(r.stdout, /enrolled push-01 as mch_\w+/);
  assert.match(r.stdout, /installed on 127\.0\.0\.1/);
  for (const f of ['opt/tidemark/tidemark-agent.mjs', 'opt/tidemark/install.sh', 'etc/tidemark/agent.env', 'etc/systemd/system/tidemark-agent.service', 'var/lib/tidemark/agent/enrollment.json']) {
    assert.ok((await stat(join(root, f))).isFile(), f);
  }
  const machines = (await up.api('GET', '/machines')).items as Array<{ name: string }>;
  assert.ok(machines.some((m) => m.name === 'push-01'), 'push-01 enrolled');
  const workDir = /working in (\/tmp\/tidemark-install\.\w+)/.exec(r.stdout)![1]!;
  await assert.rejects(stat(workDir), { code: 'ENOENT' });
  // Neither the key nor the identity stays on the process server.
  assert.ok(!ps.stderr().includes(up.key.split('.')[1]!));
  assert.deepEqual((await readdir(tmpdir())).filter((n) => n.startsWith('tidemark-push-') && n !== dir.split('/').pop()), []);
  process.stdout.write(`# push install over ssh (connect, copy, install with enrollment): ${pushMs} ms\n`);

  // The remote uninstall leaves the scratch root as it was.
  const u = await run('sh', [join(root, 'opt/tidemark/install.sh'), '--uninstall', '--root', root]);
  assert.equal(u.code, 0, u.stderr);
  assert.deepEqual(await tree(root), ['d 755 etc', 'f 644 etc/hostname']);
});

test('host keys: unknown is refused with a hint; --accept-new-host-key learns it for later pushes', { skip: !isRoot && 'needs root to run a local sshd', timeout: 120_000 }, async () => {
  const root = await scratch('remote-2');
  const unknown = await push([], root, { machine: 'push-02' });
  assert.equal(unknown.code, 1, unknown.stdout);
  assert.match(unknown.stderr, /ssh to root@127\.0\.0\.1:\d+ failed: Host key verification failed/);
  assert.match(unknown.stderr, /hint: .*--known-hosts FILE.*--accept-new-host-key/);
  assert.deepEqual(await tree(root), ['d 755 etc', 'f 644 etc/hostname']);

  const learnt = await push(['--accept-new-host-key'], root, { machine: 'push-02' });
  assert.equal(learnt.code, 0, learnt.stderr);
  const known = await readFile(join(dir, 'ps', 'push-install', 'known_hosts'), 'utf8');
  assert.ok(known.includes(knownHostsLine.trim().split(' ')[2]!), 'the host key is remembered');
  assert.equal((await run('sh', [join(root, 'opt/tidemark/install.sh'), '--uninstall', '--root', root])).code, 0);
  const again = await push([], root, { machine: 'push-02' });
  assert.equal(again.code, 0, again.stderr);
  assert.equal((await run('sh', [join(root, 'opt/tidemark/install.sh'), '--uninstall', '--root', root])).code, 0);
});

test('a refused key, a failing install and bad requests are reported clearly', { skip: !isRoot && 'needs root to run a local sshd', timeout: 120_000 }, async () => {
  const root = await scratch('remote-3');
  const stranger = await push(['--known-hosts', join(dir, 'known_hosts')], root, { identity: join(dir, 'ssh', 'stranger_key'), machine: 'push-03' });
  assert.equal(stranger.code, 1);
  assert.match(stranger.stderr, /failed: .*Permission denied/);
  assert.match(stranger.stderr, /hint: the user or the key was refused/);

  const badKey = await push(['--known-hosts', join(dir, 'known_hosts')], root, { key: 'rgk_aaaaaaaaaaaaaaaaaaaa.wrong', machine: 'push-03' });
  assert.equal(badKey.code, 1, badKey.stdout);
  assert.match(badKey.stderr, /tidemark push-install: install\.sh: enrollment with .* failed/);
  assert.match(badKey.stdout, /install failed; removing what it created/);
  assert.deepEqual(await tree(root), ['d 755 etc', 'f 644 etc/hostname']);

  const body = { host: '127.0.0.1', user: 'root', privateKey: 'x', install: {} };
  const noAuth = await fetch(`${psUrl}/v1/push-installs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(noAuth.status, 401);
  const bad = await fetch(`${psUrl}/v1/push-installs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ ...body, host: '-oProxyCommand=x' }) });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^invalid push install: host: /);
  const missing = await fetch(`${psUrl}/v1/push-installs/psh_nope`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(missing.status, 404);
  const noIdentity = await runTidemark(['push-install', '--process-server', psUrl, '--host', 'h', '--user', 'root', '--identity', join(dir, 'none'), '--control-plane', up.cpUrl, '--key', 'k', '--disk', '/d']);
  assert.equal(noIdentity.code, 1);
  assert.match(noIdentity.stderr, /cannot read --identity/);
});
