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
import { normalizeSerial } from './serial.ts';

interface Peer {
  readonly identity: ComponentIdentity | undefined;
  /** Its certificate's serial (`serial.ts`), for the revocation check. */
  readonly serial: string;
}

const bySocket = new WeakMap<TLSSocket, Peer>();

/** The verified certificate of the peer of this request, read once per connection. */
function peerOf(c: Context): Peer | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const socket = incoming?.socket as TLSSocket | undefined;
  if (!socket || !socket.encrypted || !socket.authorized) return undefined;
  let peer = bySocket.get(socket);
  if (!peer) {
    const cert = socket.getPeerCertificate();
    peer = { identity: identityOfPeerCertificate(cert), serial: normalizeSerial(cert.serialNumber ?? '') };
    bySocket.set(socket, peer);
  }
  return peer;
}

/** The verified identity of the peer of this request, if any. */
export function peerIdentity(c: Context): ComponentIdentity | undefined {
  return peerOf(c)?.identity;
}

/** The serial of the verified certificate the peer of this request presented, if any. */
export function peerSerial(c: Context): string | undefined {
  return peerOf(c)?.serial;
}

/** True when the request came over TLS (so a bearer secret on it was not sent in clear). */
export function isTls(c: Context): boolean {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return Boolean((incoming?.socket as TLSSocket | undefined)?.encrypted);
}
