import type { Context } from 'hono';
import { TidemarkError } from '../errors.ts';

/** A body larger than allowed; answer 413. */
export class BodyTooLargeError extends TidemarkError {}

/** Reads a request body into one Buffer, refusing more than `maxBytes`. */
export async function readBody(c: Context, maxBytes: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new BodyTooLargeError(`request body of ${declared} bytes exceeds ${maxBytes}`);
  }
  const stream = c.req.raw.body;
  if (!stream) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > maxBytes) throw new BodyTooLargeError(`request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? Buffer.from(chunks[0].buffer, chunks[0].byteOffset, chunks[0].length) : Buffer.concat(chunks, total);
}
