/**
 * HTTPS to a peer of the same vault: only the vault CA is trusted (pinned: Node's default
 * roots are not consulted) and this component's certificate is presented (mutual TLS).
 * Node's fetch cannot take a client certificate, so requests go through `node:https` with
 * one kept-alive agent per identity.
 */
import { Agent, request } from 'node:https';
import { checkServerIdentity } from 'node:tls';
import { Readable } from 'node:stream';
import type { TlsIdentity } from '../tls/tls-identity.ts';
import { normalizeSerial } from '../tls/serial.ts';

const agents = new WeakMap<TlsIdentity, { agent: Agent; cert: string; revision: number | undefined }>();

/** Error code of a server whose certificate is on the vault's revocation list. */
export const CERT_REVOKED = 'ERR_TLS_CERT_REVOKED';

/**
 * The kept-alive agent that presents `identity` and trusts only its CA. A renewed identity
 * (`core/tls/renewable-identity.ts`), or a changed revocation list, gets a new agent, so that
 * new connections present the new certificate and check the server against the new list.
 * Requests under way finish on the old agent, whose connections then close when idle (servers
 * close idle connections after 65 s).
 */
export function agentFor(identity: TlsIdentity): Agent {
  const have = agents.get(identity);
  const cert = identity.cert;
  const revision = identity.revocations?.revision;
  if (have && have.cert === cert && have.revision === revision) return have.agent;
  const { serverHost, revocations } = identity;
  const check = (dialled: string, peer: Parameters<typeof checkServerIdentity>[1]): Error | undefined => {
    const revokedAt = revocations?.revokedAt(normalizeSerial(peer.serialNumber));
    if (revokedAt) {
      return Object.assign(new Error(`the server's certificate ${normalizeSerial(peer.serialNumber)} was revoked at ${revokedAt}`), { code: CERT_REVOKED });
    }
    return checkServerIdentity(serverHost ?? dialled, peer);
  };
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: [identity.ca], cert, key: identity.key, minVersion: 'TLSv1.2', checkServerIdentity: check });
  agents.set(identity, { agent, cert, revision });
  return agent;
}

/** Codes of a server certificate that the pinned CA did not sign, or that names another host. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when `code` says the server's certificate is not one this vault's CA vouches for. */
export function isUntrustedCertificate(code: string | undefined): boolean {
  return code !== undefined && UNTRUSTED.has(code);
}

/** A fetch over mutual TLS: same contract as `fetch` for what the HTTP client uses. */
export function tlsFetch(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal }, identity: TlsIdentity): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: agentFor(identity), signal: init.signal }, (res) => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (Array.isArray(v)) for (const one of v) headers.append(k, one);
        else if (v !== undefined) headers.set(k, v);
      }
      const status = res.statusCode ?? 0;
      const empty = status === 204 || status === 304 || init.method === 'HEAD';
      if (empty) res.resume();
      resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers }));
    });
    req.on('error', (err: Error & { code?: string }) => reject(Object.assign(new TypeError('fetch failed'), { cause: err })));
    req.end(init.body);
  });
}
