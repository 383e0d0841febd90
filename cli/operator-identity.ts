/**
 * How the operator's commands (status, points, export, view, failover, cleanup, bookmark)
 * authenticate to a process server or master target. Over http://, with the shared token
 * (`--token`, `TIDEMARK_TOKEN`). Over https://, with an operator certificate of the vault,
 * found in this order (docs/security.md):
 *   1. `--identity DIR`, a folder of key.pem, cert.pem and ca.pem;
 *   2. `TIDEMARK_IDENTITY=DIR`;
 *   3. the index that `tidemark up` keeps for its servers: one file per server address,
 *      `<config>/identities/<host>_<port>.json` = `{ "v": 1, "identityDir": "…" }`, where
 *      `<config>` is `$XDG_CONFIG_HOME/tidemark` or `~/.config/tidemark`.
 * The index holds only where the identity is; the key stays in up's data folder (0600).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { loadIdentityDir, type TlsIdentity } from '../core/tls/tls-identity.ts';
import { optional, type Parsed } from './args.ts';
import type { Environment } from './config.ts';

export const AUTH_OPTIONS = { token: { type: 'string' }, identity: { type: 'string' } } as const;

export const AUTH_HELP = `  --token TOKEN        bearer token for an http:// server (default: $TIDEMARK_TOKEN)
  --identity DIR       operator certificate for an https:// server: key.pem, cert.pem, ca.pem
                       (default: $TIDEMARK_IDENTITY, else the one tidemark up made for that address)`;

function indexFile(configDir: string, url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return join(configDir, 'identities', `${url.hostname.replace(/[^A-Za-z0-9.-]/g, '_')}_${port}.json`);
}

/** Records that the servers at `urls` are reached with the identity in `identityDir`. */
export async function rememberIdentity(configDir: string, urls: string[], identityDir: string): Promise<void> {
  for (const u of urls) await writeFileAtomic(indexFile(configDir, new URL(u)), JSON.stringify({ v: 1, identityDir }) + '\n');
}

async function indexed(configDir: string, url: URL): Promise<string | undefined> {
  const text = await readFile(indexFile(configDir, url), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const entry = JSON.parse(text) as { v?: number; identityDir?: string };
  return entry.v === 1 && typeof entry.identityDir === 'string' ? entry.identityDir : undefined;
}

/** The credentials for `url`: `{ token }` over http, `{ tls, token }` over https. */
export async function peerAuth(url: string, values: Parsed['values'], env: Environment): Promise<{ token?: string; tls?: TlsIdentity }> {
  const token = optional(values, 'token') ?? env.token;
  const u = new URL(url);
  if (u.protocol !== 'https:') return { token };
  const dir = optional(values, 'identity') ?? env.identityDir ?? (await indexed(env.configDir, u));
  if (!dir) {
    throw new UsageError(`no operator certificate for ${u.host}`, {
      hint: 'give --identity DIR (tidemark up keeps one in DIR/operator) or set TIDEMARK_IDENTITY',
    });
  }
  const tls = await loadIdentityDir(dir);
  if (!tls) throw new UsageError(`${dir} holds no operator certificate (key.pem, cert.pem, ca.pem)`);
  return { token, tls };
}
