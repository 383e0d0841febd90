/**
 * The small HTTP client the components use to reach each other: JSON in and out, a bearer
 * token when configured, a timeout, and errors that say which peer failed and how.
 */
import { RemoteError, TidemarkError } from '../errors.ts';

export class PeerUnreachableError extends TidemarkError {}

export interface PeerOptions {
  token?: string;
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
    return await fetch(join(base, path), { ...init, signal });
  } catch (cause) {
    if (opts.signal?.aborted) throw cause;
    const why = (cause as Error & { cause?: { code?: string } }).cause?.code ?? (cause as Error).name;
    throw new PeerUnreachableError(`cannot reach ${base} (${why})`, { cause, hint: 'check the URL and that the server is running' });
  }
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

/** Sends one binary body (a frame); any answer is returned. */
export async function postBinary<T = unknown>(base: string, path: string, data: Uint8Array, opts: PeerOptions = {}): Promise<PeerResponse<T>> {
  const res = await call(base, path, { method: 'POST', headers: headers(opts.token, { 'content-type': 'application/octet-stream' }), body: data }, opts);
  return { status: res.status, body: (await parse(res)) as T };
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
