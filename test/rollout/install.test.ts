/**
 * edge-agent/install.sh into a scratch root against a real `tidemark up`: the files, the unit
 * and its configuration, the enrollment; the installed unit's command replicates once protection
 * is enabled; --uninstall leaves the root as it was; bad input fails clearly and leaves nothing.
 */
import { requestJson } from '../../core/http/client.ts';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, symlink, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.ts';
import { waitUntil, type Running } from '../helpers/tidemark-process.ts';
import { agentBundle, run, startUp, tree, unitCommand, type UpForTest } from './support.ts';
import { spawn } from 'node:child_process';

let dir = '';
let up: UpForTest;
let installSh = '';
let disk = '';
const children: Running['child'][] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tidemark-install-'));
  installSh = (await agentBundle()).installScriptPath;
  up = await startUp(join(dir, 'tm'));
  disk = join(dir, 'disk.img');
  await writeFile(disk, Buffer.alloc(0));
  const fh = await import('node:fs/promises').then((f) => f.open(disk, 'r+'));
  await fh.truncate(4 * 1024 * 1024);
  await fh.write(Buffer.alloc(65536, 'tidemark '), 0, 65536, 1 << 20);
  await fh.close();
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await up?.up.stop();
  await rm(dir, { recursive: true, force: true });
  await rm((await agentBundle()).dir, { recursive: true, force: true });
});

/** A scratch root that already holds files of others, which the install must leave alone. */
async function scratchRoot(name: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hostname'), 'web-01\n');
  await mkdir(join(root, 'var', 'lib', 'other'), { recursive: true });
  await writeFile(join(root, 'var', 'lib', 'other', 'keep'), 'x');
  return root;
}

const install = (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) => run('sh', [installSh, ...args], { ...o, timeoutMs: 60_000 });

test('installs, enrolls, runs as its unit says, and uninstalls to the root as it was', { timeout: 120_000 }, async () => {
  const root = await scratchRoot('root');
  const before = await tree(root);
  const t0 = Date.now();
  const r = await install(['--root', root, '--control-plane', up.cpUrl, '--key-file', '-', '--machine', 'web-01', '--disk', disk,
    '--interval', '1', '--freeze-cmd', 'sync -f /', '--thaw-cmd', 'true'], { input: `${up.key}\n` });
  const installMs = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /enrolled web-01 as mch_\w+/);
  assert.match(r.stdout, /systemd is not running for .*: nothing was started/);
  assert.match(r.stdout, /next: enable protection of machine web-01/);

  const after = await tree(root);
  const added = after.filter((l) => !before.includes(l));
  assert.deepEqual(added, [
    'd 700 var/lib/tidemark/agent', 'd 755 etc/systemd', 'd 755 etc/systemd/system', 'd 755 etc/tidemark', 'd 755 opt', 'd 755 opt/tidemark',
    'd 755 var/lib/tidemark', 'f 600 var/lib/tidemark/agent/enrollment-key.pem', 'f 600 var/lib/tidemark/agent/enrollment.json', 'f 640 etc/tidemark/agent.env',
    'f 644 etc/systemd/system/tidemark-agent.service', 'f 644 var/lib/tidemark/agent-install.manifest',
    'f 755 opt/tidemark/install.sh', 'f 755 opt/tidemark/tidemark-agent.mjs',
  ].sort((a, b) => a.slice(6).localeCompare(b.slice(6))).sort());

  // The key is nowhere on disk; the machine is enrolled with its disk.
  for (const line of after.filter((l) => l.startsWith('f '))) {
    const text = await readFile(join(root, line.split(' ')[2]!), 'utf8');
    assert.ok(!text.includes(up.key.split('.')[1]!), `${line} holds the registration key`);
  }
  const enrollment = JSON.parse(await readFile(join(root, 'var/lib/tidemark/agent/enrollment.json'), 'utf8'));
  const machines = (await up.api('GET', '/machines')).items as Array<{ id: string; name: string; disks: Array<{ sizeBytes: number }> }>;
  const machine = machines.find((m) => m.name === 'web-01');
  assert.ok(machine, 'the machine is listed by the control plane');
  assert.equal(machine.id, enrollment.machineId);
  assert.equal(machine.disks[0]!.sizeBytes, 4 * 1024 * 1024);

  // The unit: systemd's own checker accepts it, and its command line is the agent's.
  const unitPath = join(root, 'etc/systemd/system/tidemark-agent.service');
  const unit = await readFile(unitPath, 'utf8');
  assert.match(unit, /^EnvironmentFile=\/etc\/tidemark\/agent\.env$/m);
  assert.match(unit, new RegExp(`^ExecStart=${process.execPath} /opt/tidemark/tidemark-agent\\.mjs agent `, 'm'));
  assert.match(unit, /^WantedBy=multi-user\.target$/m);
  if (spawnSync('systemd-analyze', ['--version']).status === 0) {
    const v = await run('systemd-analyze', ['verify', unitPath]);
    assert.equal(v.code, 0, `systemd-analyze verify: ${v.stderr}`);
    assert.equal(v.stderr.trim(), '');
  }
  const env = await readFile(join(root, 'etc/tidemark/agent.env'), 'utf8');
  assert.match(env, /^TIDEMARK_FREEZE_CMD="sync -f \/"$/m);
  assert.match(env, new RegExp(`^TIDEMARK_DISK_ARGS="--disk ${disk}"$`, 'm'));

  // Run what systemd would run (paths under the root): it waits, then replicates once protected.
  const argv = await unitCommand(unitPath, (p) => join(root, p));
  const agent = spawn(argv[0]!, argv.slice(1).map((a) => (a.startsWith('/opt/tidemark/') || a.startsWith('/var/lib/tidemark/') ? join(root, a) : a)), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(agent);
  let out = '';
  agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
  agent.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitUntil('the agent to wait for protection', async () => (/waiting for protection/.test(out) ? true : undefined), 30_000);
  assert.doesNotMatch(out, /enrolled web-01/, 'the service reuses the enrollment of the install');
  const policy = await up.api('POST', '/policies', { name: 'rollout', rpoThresholdSeconds: 30, retentionSeconds: 3600 });
  await up.api('PUT', `/machines/${machine.id}/protection`, { policyId: policy.id });
  await waitUntil('a recovery point of the installed agent', async () => {
    const res = await requestJson<{ points: unknown[] }>(up.mtUrl, 'GET', '/v1/machines/web-01/disks/disk0/points', undefined, { tls: up.operator });
    return res.status === 200 && res.body.points.length > 0 ? true : undefined;
  }, 60_000).catch((e) => { throw new Error(`${(e as Error).message}\n${out.slice(-3000)}`); });
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));

  // Installing twice is refused; uninstalling restores the root exactly.
  const again = await install(['--root', root, '--control-plane', up.cpUrl, '--key', up.key, '--machine', 'web-01', '--disk', disk]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already installed/);
  const t1 = Date.now();
  const u = await run('sh', [join(root, 'opt/tidemark/install.sh'), '--uninstall', '--root', root]);
  const uninstallMs = Date.now() - t1;
  assert.equal(u.code, 0, u.stderr);
  assert.match(u.stdout, /the Tidemark agent is uninstalled/);
  assert.deepEqual(await tree(root), before);
  const none = await run('sh', [installSh, '--uninstall', '--root', root]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no agent installed here/);
  process.stdout.write(`# install (with enrollment) ${installMs} ms, uninstall ${uninstallMs} ms\n`);
});

test('--uninstall --keep-state keeps the enrollment, and a new install reuses it without a key', { timeout: 60_000 }, async () => {
  const root = await scratchRoot('keep');
  const before = await tree(root);
  const first = await install(['--root', root, '--control-plane', up.cpUrl, '--key', up.key, '--machine', 'db-01', '--disk', disk]);
  assert.equal(first.code, 0, first.stderr);
  const machineId = JSON.parse(await readFile(join(root, 'var/lib/tidemark/agent/enrollment.json'), 'utf8')).machineId;
  const u = await install(['--uninstall', '--keep-state', '--root', root]);
  assert.equal(u.code, 0, u.stderr);
  assert.match(u.stdout, /kept \/var\/lib\/tidemark\/agent/);
  const second = await install(['--root', root, '--control-plane', up.cpUrl, '--machine', 'db-01', '--disk', disk]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /already enrolled: db-01 is mch_/);
  assert.equal(JSON.parse(await readFile(join(root, 'var/lib/tidemark/agent/enrollment.json'), 'utf8')).machineId, machineId);
  assert.equal((await install(['--uninstall', '--root', root])).code, 0);
  assert.deepEqual(await tree(root), before);
});

test('bad input: a clear error, exit 2, and nothing left in the root', { timeout: 90_000 }, async () => {
  const root = await scratchRoot('bad');
  const before = await tree(root);
  const deadPort = await freePort();
  const oldNode = join(dir, 'old-node');
  await writeFile(oldNode, '#!/bin/sh\nprintf 18.19.0\n');
  await chmod(oldNode, 0o755);
  const base = ['--root', root, '--control-plane', up.cpUrl, '--machine', 'web-02', '--disk', disk];
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown flag', [...base, '--key', up.key, '--colour', 'blue'], /unknown option '--colour'/],
    ['missing key', base, /a registration key is required: give --key KEY or --key-file FILE/],
    ['empty key file', [...base, '--key-file', '/dev/null'], /a registration key is required/],
    ['wrong key', [...base, '--key', 'rgk_aaaaaaaaaaaaaaaaaaaa.wrong'], /enrollment with .* failed[\s\S]*registration key/],
    ['unreachable control plane', ['--root', root, '--control-plane', `http://127.0.0.1:${deadPort}`, '--key', up.key, '--machine', 'web-02', '--disk', disk], /cannot reach the control plane at http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED/],
    ['not a URL', ['--root', root, '--control-plane', 'cp.example', '--key', up.key, '--disk', disk], /must be an http:\/\/ or https:\/\/ URL/],
    ['missing node', [...base, '--key', up.key, '--node', join(dir, 'no-such-node')], /--node .* not found|node binary .* is not executable/],
    ['old node', [...base, '--key', up.key, '--node', oldNode], /node 18\.19\.0 at .* is too old[\s\S]*Node\.js 20\.10 or newer/],
    ['missing disk', ['--root', root, '--control-plane', up.cpUrl, '--key', up.key, '--disk', join(dir, 'nope.img')], /disk .*nope\.img does not exist/],
    ['no disk', ['--root', root, '--control-plane', up.cpUrl, '--key', up.key], /give at least one --disk PATH/],
    ['bad machine name', [...base, '--key', up.key, '--machine', '-x'], /invalid machine name '-x'/],
    ['tap without nbd', [...base, '--key', up.key, '--mode', 'tap'], /--mode tap needs --nbd/],
    ['missing value', ['--root', root, '--control-plane'], /--control-plane needs a value/],
    ['missing bundle', [...base, '--key', up.key, '--bundle', join(dir, 'none.mjs')], /the agent bundle .* is missing/],
  ];
  for (const [what, args, expected] of cases) {
    const r = await install(args);
    assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, expected, what);
    assert.match(r.stderr, /^install\.sh: error: /m, what);
    assert.deepEqual(await tree(root), before, `${what} left files behind`);
  }
  // PATH without node at all.
  const bin = join(dir, 'bin-without-node');
  await mkdir(bin);
  for (const name of await readdir('/usr/bin')) if (!/^node/.test(name)) await symlink(join('/usr/bin', name), join(bin, name));
  const noNode = await run('/bin/sh', [installSh, ...base, '--key', up.key], { env: { PATH: bin } });
  assert.equal(noNode.code, 2, noNode.stderr);
  assert.match(noNode.stderr, /node is not installed \(or not in PATH\)/);
  assert.ok(!(await readdir(root)).includes('opt'));
  assert.equal((await stat(join(root, 'etc', 'hostname'))).size, 7);
});

test('install.sh is POSIX sh and shellcheck-clean', async () => {
  const r = await run('shellcheck', ['--shell=sh', '--severity=style', installSh]).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  assert.equal(r.code, 0, `shellcheck (Debian package shellcheck, installed by .ci/run): ${r.stdout}${r.stderr}`);
});
