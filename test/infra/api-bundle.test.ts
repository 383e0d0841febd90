/**
 * The API function's bundle as CDK stages it: it carries the console's static files next to
 * `index.mjs`, and the bundled handler, imported from the asset directory, serves the console
 * from them for an API Gateway HTTP API (payload 2.0) event.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { REPO_ROOT } from '../../infra/control-plane-function.ts';
import { ControlPlaneStack } from '../../infra/control-plane-stack.ts';

const CONSOLE_STATIC = join(REPO_ROOT, 'functions/console/static');
let outdir: string;
let assetDirs: Record<string, string>;
let synthMs: number;
const savedEnv = { ...process.env };

/** Every file under `dir`, relative to it, with `/` separators, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).split(sep).join('/'))
    .sort();
}

before(async () => {
  outdir = await mkdtemp(join(tmpdir(), 'tidemark-api-bundle-'));
  // The bundles leave @aws-sdk/* to the Lambda runtime; here the repository's copy stands in for it.
  await symlink(join(REPO_ROOT, 'node_modules'), join(outdir, 'node_modules'), 'dir');
  const started = Date.now();
  const app = new App({ outdir, builtinCloudFormationValidation: false });
  const stack = new ControlPlaneStack(app, 'BundleTest', {
    env: { account: '123456789012', region: 'eu-west-1' },
    adminTokenSha256: 'a'.repeat(64),
    minify: false,
  });
  const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } });
  synthMs = Date.now() - started;
  // Each function's code is the asset whose hash names both its zip (S3Key) and its staged directory.
  assetDirs = Object.fromEntries(Object.entries(functions).map(([id, f]: [string, any]) => {
    const key = String(f.Properties.Code.S3Key);
    assert.match(key, /^[0-9a-f]{64}\.zip$/);
    return [id, join(outdir, `asset.${key.slice(0, -'.zip'.length)}`)];
  }));
});

after(async () => {
  process.env = savedEnv;
  await rm(outdir, { recursive: true, force: true });
});

function apiAssetDir(): string {
  const ids = Object.keys(assetDirs).filter((id) => id.startsWith('ApiFunction'));
  assert.equal(ids.length, 1, `API function among ${Object.keys(assetDirs).join(', ')}`);
  return assetDirs[ids[0]!]!;
}

it('synthesises, bundling included, in under 30 seconds', () => {
  assert.ok(synthMs < 30_000, `synth took ${synthMs} ms`);
});

it("copies every console file into the API function's bundle, next to index.mjs", async () => {
  const dir = apiAssetDir();
  const bundled = await filesUnder(dir);
  assert.ok(bundled.includes('index.mjs'), bundled.join(', '));
  const source = await filesUnder(CONSOLE_STATIC);
  assert.ok(source.includes('index.html') && source.includes('js/main.js'), source.join(', '));
  assert.deepEqual(bundled.filter((f) => f.startsWith('static/')), source.map((f) => `static/${f}`));
  for (const f of source) {
    assert.deepEqual(await readFile(join(dir, 'static', f)), await readFile(join(CONSOLE_STATIC, f)), f);
  }
});

it('leaves the console out of the other functions', async () => {
  const others = Object.entries(assetDirs).filter(([id]) => !id.startsWith('ApiFunction'));
  assert.equal(others.length, 2);
  for (const [id, dir] of others) {
    assert.ok(!(await filesUnder(dir)).some((f) => f.startsWith('static/')), id);
  }
});

it('the bundled handler, loaded from its asset directory, serves the console', async () => {
  Object.assign(process.env, {
    AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
    TIDEMARK_BUCKET: 'tm-state', TIDEMARK_SITE_EVENTS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/tm-site-events',
    TIDEMARK_SITE_QUEUE_PREFIX: 'tm-site-', TIDEMARK_AWS_ENDPOINT: 'http://127.0.0.1:9', TIDEMARK_LOG_LEVEL: 'error',
  });
  const { handler } = await import(pathToFileURL(join(apiAssetDir(), 'index.mjs')).href) as {
    handler: (event: unknown) => Promise<{ statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: boolean }>;
  };
  const fixture = await readFile(join(REPO_ROOT, 'test/functions/fixtures/api-gateway-v2-event.json'), 'utf8');
  const get = (path: string) => {
    const event = JSON.parse(fixture);
    event.rawPath = path;
    event.requestContext.http.path = path;
    event.requestContext.http.method = 'GET';
    event.headers.accept = 'text/html';
    return handler(event);
  };
  const decode = (res: { body: string; isBase64Encoded: boolean }) => res.isBase64Encoded ? Buffer.from(res.body, 'base64').toString('utf8') : res.body;

  const page = await get('/console/');
  assert.equal(page.statusCode, 200, page.body);
  assert.match(page.headers['content-type']!, /^text\/html/);
  assert.match(page.headers['content-security-policy']!, /default-src 'self'/);
  assert.equal(decode(page), await readFile(join(CONSOLE_STATIC, 'index.html'), 'utf8'));

  const script = await get('/console/js/main.js');
  assert.equal(script.statusCode, 200, script.body);
  assert.match(script.headers['content-type']!, /^text\/javascript/);
  assert.equal(decode(script), await readFile(join(CONSOLE_STATIC, 'js/main.js'), 'utf8'));

  const root = await get('/');
  assert.equal(root.statusCode, 302);
  assert.equal(root.headers.location, '/console/');
});
