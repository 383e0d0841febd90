// The control plane API, with the operator token the user signed in with (kept for this tab only).

const TOKEN_KEY = 'tidemark.token';
const BASE = new URL('../api/v1', window.location.href.replace(/\/console\/.*$/, '/console/')).pathname;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `request failed with status ${status}`);
    this.status = status;
    this.hint = body?.hint;
    this.field = body?.field;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Calls the API; resolves to the JSON answer, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${BASE}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

export const get = (path) => api('GET', path);

/** The base URL of this control plane, as agents reach it (the page's origin). */
export function controlPlaneUrl() {
  return window.location.origin;
}
