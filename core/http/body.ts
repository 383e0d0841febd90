import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { TidemarkError } from '../errors.ts';

/** A body larger than allowed; answer 413. */
export class BodyTooLargeError extends TidemarkError {}

function nodeRequest(c: Context): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  return env && typeof env === 'object' && env.incoming && typeof env.incoming.on === 'function' ? env.incoming : undefined;
}

/**
 * Reads a request body into one Buffer, refusing more than `maxBytes`. On Node's HTTP server
 * it reads the socket stream directly into a buffer of the declared length: batches are
 * megabytes, and the web-stream path costs a copy and a conversion per chunk.
 */
export async function readBody(c: Context, maxBytes: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new BodyTooLargeError(`request body of ${declared} bytes exceeds ${maxBytes}`);
  }
  const incoming = nodeRequest(c);
  const source: AsyncIterable<Uint8Array> | null = incoming && !incoming.readableDidRead
    ? incoming
    : (c.req.raw.body as unknown as AsyncIterable<Uint8Array> | null);
  if (!source) return Buffer.alloc(0);
  if (Number.isFinite(declared) && incoming && source === incoming) {
    const out = Buffer.allocUnsafe(declared);
    let at = 0;
    for await (const chunk of source) {
      if (at + chunk.length > declared) throw new BodyTooLargeError('request body longer than its content-length');
      out.set(chunk, at);
      at += chunk.length;
    }
    if (at !== declared) throw new BodyTooLargeError(`request body ended after ${at} of ${declared} bytes`);
    return out;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > maxBytes) throw new BodyTooLargeError(`request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? Buffer.from(chunks[0].buffer, chunks[0].byteOffset, chunks[0].length) : Buffer.concat(chunks, total);
}
