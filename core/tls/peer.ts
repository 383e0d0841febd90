/**
 * The identity of the TLS client behind a request, on a server started with a `TlsIdentity`
 * (`core/http/serve.ts`). A client certificate counts only when the handshake verified it
 * against the pinned vault CA (`socket.authorized`); one from any other CA, or none, is no
 * identity (the request then needs another credential or gets 401).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Context } from 'hono';
import { identityOfPeerCertificate, type ComponentIdentity } from './identity.ts';

const bySocket = new WeakMap<TLSSocket, ComponentIdentity | null>();

/** The verified identity of the peer of this request, if any. */
export function peerIdentity(c: Context): ComponentIdentity | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const socket = incoming?.socket as TLSSocket | undefined;
  if (!socket || !socket.encrypted || !socket.authorized) return undefined;
  let id = bySocket.get(socket);
  if (id === undefined) {
    id = identityOfPeerCertificate(socket.getPeerCertificate()) ?? null;
    bySocket.set(socket, id);
  }
  return id ?? undefined;
}

/** True when the request came over TLS (so a bearer secret on it was not sent in clear). */
export function isTls(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return Boolean((incoming?.socket as TLSSocket | undefined)?.encrypted);
}
