/**
 * Starts a Hono app on Node's HTTP server and resolves once it listens, so that port 0 can
 * be used and the chosen port read back.
 */
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isRenewable } from '../tls/renewable-identity.ts';
import type { TlsIdentity } from '../tls/tls-identity.ts';
import type { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { UsageError } from '../errors.ts';

export interface Listening {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` (or `[v6]:PORT`, or `:PORT` for all interfaces). */
export function parseListen(s: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`invalid listen address ${JSON.stringify(s)}`, { hint: 'use HOST:PORT, e.g. 127.0.0.1:7400 or 0.0.0.0:7400' });
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/**
 * With `tls`, serves HTTPS with its certificate and asks every client for one: a client
 * certificate is verified against `tls.ca` only (the vault CA) and read by `core/tls/peer.ts`;
 * the handshake also admits clients without one, so that `/healthz` stays open and the app
 * answers 401 rather than a bare TLS alert. A renewable identity's new certificate is served
 * from the next handshake on, without a restart.
 */
export async function serve(app: Hono<any>, address: ListenAddress, options: { tls?: TlsIdentity } = {}): Promise<Listening> {
  const { tls } = options;
  const secureContext = (id: TlsIdentity) => ({ key: id.key, cert: id.cert, ca: [id.ca] });
  const server = (tls
    ? createAdaptorServer({
      fetch: app.fetch,
      createServer: createHttpsServer,
      serverOptions: { ...secureContext(tls), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    })
    : createAdaptorServer({ fetch: app.fetch })) as Server;
  if (isRenewable(tls)) tls.onRenew(() => (server as unknown as HttpsServer).setSecureContext({ ...secureContext(tls), minVersion: 'TLSv1.2' }));
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
