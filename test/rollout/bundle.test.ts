/**
 * The single-file agent: copied alone into an empty folder and run with plain `node`, it
 * replicates a disk (scan mode on its scan threads, LZ4 and block hashes through its inline WebAssembly) to a
 * real process server and master target, and the exported point equals the source.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { makeSampleDisk, sha256File } from '../../cli/demo/sample-disk.ts';
import { TestStack } from '../helpers/stack.ts';
import { runTidemark, waitUntil } from '../helpers/tidemark-process.ts';
import { agentBundle, run } from './support.ts';

const TOKEN = 'bundle-test-token';
let stack: TestStack | undefined;
let dir = '';

after(async () => {
  await stack?.stop();
  const b = await agentBundle();
  await rm(b.dir, { recursive: true, force: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the bundle is one self-contained file', async () => {
  const b = await agentBundle();
  process.stdout.write(`# bundle: ${(b.bundleBytes / 1024).toFixed(0)} KiB, built in ${b.buildMs} ms\n`);
  const text = await readFile(b.bundlePath, 'utf8');
  assert.ok(text.startsWith('#!/usr/bin/env node\n'));
  // Only Node's own modules are imported; everything else (the .wasm of lz4 too) is inside.
  const imports = [...text.matchAll(/(?:^|;)\s*import[\w\s{},*$]*from\s*["']([^"']+)["']|\brequire\("([^"]+)"\)/gm)].map((m) => m[1] ?? m[2]);
  assert.ok(imports.includes('node:module'), `imports found: ${imports.join(', ')}`);
  const foreign = imports.filter((s) => !s!.startsWith('node:') && !['fs', 'path', 'util', 'os', 'crypto', 'module'].includes(s!));
  assert.deepEqual(foreign, []);
  assert.doesNotMatch(text, /lz4_wasm_nodejs_bg\.wasm/);
  assert.ok(b.bundleBytes < 2 * 1024 * 1024, `bundle of ${b.bundleBytes} bytes`);
});

test('copied alone into an empty folder, it replicates a disk to a real process server and master target', { timeout: 120_000 }, async () => {
  const b = await agentBundle();
  dir = join(b.dir, 'run');
  const empty = join(dir, 'agent-only');
  await mkdir(empty, { recursive: true });
  await copyFile(b.bundlePath, join(empty, 'tidemark-agent.mjs'));
  assert.deepEqual(await readdir(empty), ['tidemark-agent.mjs']);
  const env: NodeJS.ProcessEnv = { ...process.env, TIDEMARK_TOKEN: TOKEN };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;

  const version = await run(process.execPath, ['tidemark-agent.mjs', '--version'], { cwd: empty, env });
  assert.equal(version.code, 0);
  assert.match(version.stdout, /tidemark 0\.1\.0/);
  const other = await run(process.execPath, ['tidemark-agent.mjs', 'up'], { cwd: empty, env });
  assert.equal(other.code, 2);
  assert.match(other.stderr, /this build has only 'agent'/);

  stack = await new TestStack(join(dir, 'stack'), { TIDEMARK_TOKEN: TOKEN }).start();
  const disk = join(dir, 'disk.img');
  await makeSampleDisk(disk, 24 * 1024 * 1024, 7);
  const source = await sha256File(disk);
  const started = Date.now();
  const agent = spawn(process.execPath, ['tidemark-agent.mjs', 'agent', '--state', 'state', '--process-server', stack.psUrl,
    '--machine', 'bundled', '--disk', disk, '--mode', 'scan', '--interval', '1', '--compress'], { cwd: empty, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let agentErr = '';
  agent.stderr.on('data', (d: Buffer) => (agentErr += d.toString()));
  const exited = new Promise((r) => agent.on('exit', r));
  try {
    await waitUntil('a recovery point from the bundled agent', async () => ((await stack!.points('bundled')).length > 0 ? true : undefined), 90_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- agent ---\n${agentErr.slice(-3000)}\n${stack!.logs()}`); });
  } finally {
    agent.kill('SIGTERM');
    await exited;
  }
  process.stdout.write(`# first point of a 24 MiB disk through the bundle: ${Date.now() - started} ms\n`);
  const out = join(dir, 'export.img');
  const r = await runTidemark(['export', '--master-target', stack.mtUrl, '--machine', 'bundled', '--disk', 'disk0', '--at', 'latest', '--out', out], { TIDEMARK_TOKEN: TOKEN });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await sha256File(out), source);
  // The agent kept its state beside it, and nothing else appeared there.
  assert.deepEqual((await readdir(empty)).sort(), ['state', 'tidemark-agent.mjs']);
});
