/**
 * Serves the console: the static files in `static/` (an HTML page, a stylesheet and plain ES
 * modules, nothing from outside the machine) under `/console/`, with `/` sending browsers there.
 * The console talks only to the API under `/api/v1`, with the operator token its user signs in with.
 *
 * @example
 *   const app = new Hono();
 *   mountConsole(app);            // GET /console/ → index.html, /console/js/main.js, …
 */
import type { Hono } from 'hono';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONSOLE_PATH = '/console';
/** Where the console's files are, next to this module. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Nothing but this origin: no inline script, no remote asset, no framing. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  readonly body: Uint8Array;
  readonly type: string;
}

/** Every file under `dir`, by its path relative to `dir` with `/` separators. */
async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const type = CONTENT_TYPES[extname(e.name)];
    if (!type) continue;
    const full = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    assets.set(relative(dir, full).split(sep).join('/'), { body: await readFile(full), type });
  }
  return assets;
}

export interface ConsoleOptions {
  /** @default DEFAULT_ASSETS_DIR */
  readonly assetsDir?: string;
}

/** Adds the console's routes to `app`. Files are read once, on the first request. */
export function mountConsole(app: Hono<any>, options: ConsoleOptions = {}): void {
  let loading: Promise<Map<string, Asset>> | undefined;
  const assets = () => (loading ??= loadAssets(options.assetsDir ?? DEFAULT_ASSETS_DIR).catch((err) => {
    loading = undefined;
    throw err;
  }));

  app.get('/', (c) => c.redirect(`${CONSOLE_PATH}/`));
  app.get(CONSOLE_PATH, (c) => c.redirect(`${CONSOLE_PATH}/`));
  app.get(`${CONSOLE_PATH}/*`, async (c) => {
    const name = c.req.path.slice(CONSOLE_PATH.length + 1) || 'index.html';
    let found: Asset | undefined;
    try {
      found = (await assets()).get(name);
    } catch {
      return c.text('console files are missing from this installation', 503);
    }
    if (!found) return c.text(`no console file ${name}`, 404);
    const headers = { 'content-type': found.type, 'cache-control': 'no-cache', ...SECURITY_HEADERS };
    return c.body(found.body as Uint8Array<ArrayBuffer>, 200, headers);
  });
}
