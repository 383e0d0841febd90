import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { TidemarkError } from '../errors.ts';
import type { BufferPool } from '../buffer-pool.ts';

/** A body larger than allowed; answer 413. */
export class BodyTooLargeError extends TidemarkError {}

function nodeRequest(c: Context): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  return env && typeof env === 'object' && env.incoming && typeof env.incoming.on === 'function' ? env.incoming : undefined;
}

export interface ReadBodyOptions {
  /**
   * Where the body's buffer comes from when its length is declared: the caller gives it back
   * (`pool.release`) once done with it. Without a pool, a new buffer.
   */
  pool?: BufferPool;
}

/**
 * Reads a request body into one Buffer, refusing more than `maxBytes`. On Node's HTTP server
 * it reads the socket stream directly into a buffer of the declared length: batches are
 * megabytes, and the web-stream path costs a copy and a conversion per chunk.
 */
export async function readBody(c: Context, maxBytes: number, options: ReadBodyOptions = {}): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new BodyTooLargeError(`request body of ${declared} bytes exceeds ${maxBytes}`);
  }
  const incoming = nodeRequest(c);
  if (Number.isFinite(declared) && incoming && !incoming.readableDidRead) {
    const out = options.pool ? options.pool.acquire(declared) : Buffer.allocUnsafe(declared);
    try {
      await readInto(incoming, out);
    } catch (e) {
      options.pool?.release(out);
      throw e;
    }
    return out;
  }
  const source: AsyncIterable<Uint8Array> | null = incoming && !incoming.readableDidRead
    ? incoming
    : (c.req.raw.body as unknown as AsyncIterable<Uint8Array> | null);
  if (!source) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > maxBytes) throw new BodyTooLargeError(`request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? Buffer.from(chunks[0].buffer, chunks[0].byteOffset, chunks[0].length) : Buffer.concat(chunks, total);
}

/** Fills `out` with the request's body, which must be exactly as long; 'data' events cost less than async iteration. */
function readInto(incoming: IncomingMessage, out: Buffer): Promise<void> {
  const declared = out.length;
  return new Promise((resolve, reject) => {
    let at = 0;
    const done = (err?: Error) => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', done);
      incoming.off('close', onClose);
      if (err) {
        // Whatever else arrives is dropped, so that the connection can still answer.
        incoming.resume();
        reject(err);
      } else resolve();
    };
    const onData = (chunk: Buffer) => {
      if (at + chunk.length > declared) return done(new BodyTooLargeError('request body longer than its content-length'));
      chunk.copy(out, at);
      at += chunk.length;
    };
    const onEnd = () => done(at === declared ? undefined : new BodyTooLargeError(`request body ended after ${at} of ${declared} bytes`));
    const onClose = () => done(new BodyTooLargeError(`request body ended after ${at} of ${declared} bytes`));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', done);
    incoming.on('close', onClose);
  });
}
