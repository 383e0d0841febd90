/**
 * The small HTTP client the components use to reach each other: JSON in and out, a bearer
 * token when configured, a timeout, and errors that say which peer failed and how.
 */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { RemoteError, TidemarkError } from '../errors.ts';
import type { TlsIdentity } from '../tls/tls-identity.ts';
import { agentFor, CERT_REVOKED, isUntrustedCertificate, tlsFetch } from './tls-client.ts';

/** Kept-alive connections for batch uploads (fetch would copy each multi-megabyte body). */
const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 16 });

export class PeerUnreachableError extends TidemarkError {}

export interface PeerOptions {
  token?: string;
  /** For https:// peers of the vault: trust only its CA and present this certificate. */
  tls?: TlsIdentity;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PeerResponse<T> {
  status: number;
  body: T;
}

function headers(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

function join(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

async function call(base: string, path: string, init: RequestInit, opts: PeerOptions): Promise<Response> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const url = join(base, path);
    return opts.tls && url.startsWith('https:')
      ? await tlsFetch(url, { ...(init as { method?: string; headers?: Record<string, string>; body?: string }), signal }, opts.tls)
      : await fetch(url, { ...init, signal });
  } catch (cause) {
    if (opts.signal?.aborted) throw cause;
    throw unreachable(base, (cause as Error & { cause?: { code?: string } }).cause?.code ?? (cause as Error).name, cause);
  }
}

function unreachable(base: string, code: string | undefined, cause: unknown): PeerUnreachableError {
  if (code === CERT_REVOKED) {
    return new PeerUnreachableError(`refused ${base}: ${((cause as { cause?: Error }).cause ?? (cause as Error)).message}`, {
      cause, hint: "the vault's admin revoked it: the server must renew or enroll again",
    });
  }
  if (isUntrustedCertificate(code)) {
    return new PeerUnreachableError(`refused ${base}: its certificate is not from this vault's CA (${code})`, {
      cause, hint: 'check the URL: the server must present a certificate issued by the vault it was enrolled in',
    });
  }
  return new PeerUnreachableError(`cannot reach ${base} (${code})`, { cause, hint: 'check the URL and that the server is running' });
}

async function parse(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 500) };
  }
}

/** Any answer is returned (no throw on 4xx/5xx); only an unreachable peer throws. */
export async function requestJson<T = unknown>(base: string, method: string, path: string, body: unknown, opts: PeerOptions = {}): Promise<PeerResponse<T>> {
  const init: RequestInit = { method, headers: headers(opts.token, body === undefined ? {} : { 'content-type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await call(base, path, init, opts);
  return { status: res.status, body: (await parse(res)) as T };
}

/** Sends one binary body (a frame) over a kept-alive connection; any answer is returned. */
export function postBinary<T = unknown>(base: string, path: string, data: Uint8Array, opts: PeerOptions = {}): Promise<PeerResponse<T>> {
  const url = new URL(join(base, path));
  const secure = url.protocol === 'https:';
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      agent: secure ? (opts.tls ? agentFor(opts.tls) : httpsAgent) : httpAgent,
      headers: headers(opts.token, { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }),
      signal,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('error', fail);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = {};
        try {
          body = text ? JSON.parse(text) : {};
        } catch {
          body = { error: text.slice(0, 500) };
        }
        resolve({ status: res.statusCode ?? 0, body: body as T });
      });
    });
    function fail(cause: Error & { code?: string }) {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      reject(unreachable(base, cause.code ?? cause.name, cause));
    }
    req.on('error', fail);
    req.end(data);
  });
}

/** GET that must succeed; anything but 2xx throws a RemoteError carrying the peer's message. */
export async function getJson<T>(base: string, path: string, opts: PeerOptions = {}): Promise<T> {
  const r = await requestJson<T & { error?: string; hint?: string }>(base, 'GET', path, undefined, opts);
  if (r.status < 200 || r.status >= 300) throw remoteError(base, r);
  return r.body;
}

export function remoteError(base: string, r: PeerResponse<unknown>): RemoteError {
  const b = (r.body ?? {}) as { error?: string; hint?: string };
  const e = new RemoteError(r.status, `${base} answered ${r.status}: ${b.error ?? 'no message'}`, r.body);
  return Object.assign(e, { hint: b.hint });
}

/** GET a binary stream (an image); throws RemoteError for non-2xx. */
export async function getStream(base: string, path: string, opts: PeerOptions = {}): Promise<Response> {
  const res = await call(base, path, { method: 'GET', headers: headers(opts.token) }, { ...opts, timeoutMs: opts.timeoutMs ?? 24 * 3600_000 });
  if (!res.ok) throw remoteError(base, { status: res.status, body: await parse(res) });
  return res;
}
