/** The control plane's API called as its administrator, for tests that set up vaults, policies and machines. */
import assert from 'node:assert/strict';

/** Calls `method path` of a running control plane with its admin token; the JSON answer, asserting success. */
export async function adminCall(cp: { url: string; adminToken: string }, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${cp.url}/api/v1${path}`, {
    method, headers: { authorization: `Bearer ${cp.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
