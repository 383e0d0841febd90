/**
 * Exporting the disk image at a point, streamed from a point-in-time reader: nothing is copied
 * first, no lock is held between chunks, and the reader's pin keeps the journal segments it
 * needs until the stream ends or is cancelled.
 */
import { randomUUID } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DiskStream } from './disk-stream.ts';
import type { PointInTimeReader } from './point-reader.ts';
import { writevAll } from '../core/file-io.ts';

/** Bytes read from the reader per chunk of an export. */
export const EXPORT_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The whole disk of `reader` as a byte stream, in chunks of `chunkBytes`. The reader is closed
 * when the stream ends, fails or is cancelled.
 */
export function imageStream(reader: PointInTimeReader, chunkBytes = EXPORT_CHUNK_BYTES): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (at >= reader.sizeBytes) {
            await reader.close();
            controller.close();
            return;
          }
          const n = Math.min(chunkBytes, reader.sizeBytes - at);
          const chunk = await reader.read(at, n);
          at += n;
          controller.enqueue(chunk);
        } catch (err) {
          await reader.close();
          controller.error(err);
        }
      },
      async cancel() {
        await reader.close();
      },
    },
    { highWaterMark: 1 },
  );
}

/** The chunks of the whole disk of `reader`, the next one read while the current one is sent. */
async function* chunks(reader: PointInTimeReader, chunkBytes: number): AsyncGenerator<Buffer> {
  let at = 0;
  const next = () => (at < reader.sizeBytes ? reader.read(at, Math.min(chunkBytes, reader.sizeBytes - at)) : undefined);
  let pending = next();
  while (pending) {
    const chunk = await pending;
    at += chunk.length;
    pending = next();
    // A rejected read ahead is seen on the next turn; keep it from being reported as unhandled meanwhile.
    pending?.catch(() => undefined);
    yield chunk;
  }
}

/**
 * Sends the whole disk of `reader` as the body of `res` (whose headers the caller set) straight
 * to Node's response: no web-stream conversion, one chunk read ahead. Closes the reader at the
 * end, on error and when the client goes away.
 */
export async function sendImage(reader: PointInTimeReader, res: ServerResponse, chunkBytes = EXPORT_CHUNK_BYTES): Promise<void> {
  try {
    await pipeline(Readable.from(chunks(reader, chunkBytes), { objectMode: false, highWaterMark: chunkBytes }), res);
  } finally {
    await reader.close();
  }
}

export interface ExportedImage {
  /** A new file in the directory asked for; the caller deletes it. */
  path: string;
  /** The seq the image stands at. */
  seq: number;
  sizeBytes: number;
}

/** Writes the image of `stream` at `seq` to a new file in `dir` (sparse where the disk is zero). */
export async function buildImage(stream: DiskStream, seq: number, dir: string): Promise<ExportedImage> {
  const path = join(dir, `export-${randomUUID()}.img`);
  const reader = stream.openReader(seq);
  try {
    const fh = await open(path, 'w');
    try {
      const buf = Buffer.allocUnsafe(Math.min(EXPORT_CHUNK_BYTES, reader.sizeBytes));
      for (let at = 0; at < reader.sizeBytes; at += buf.length) {
        const chunk = buf.subarray(0, Math.min(buf.length, reader.sizeBytes - at));
        await reader.readInto(chunk, at);
        // A full disk may take part of a write without an error: writevAll goes on until it does.
        if (!isZero(chunk)) await writevAll(fh, [chunk], at);
      }
      await fh.truncate(reader.sizeBytes);
    } finally {
      await fh.close();
    }
    return { path, seq, sizeBytes: reader.sizeBytes };
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  } finally {
    await reader.close();
  }
}

const ZERO_PAGE = Buffer.alloc(64 * 1024);

function isZero(b: Buffer): boolean {
  for (let at = 0; at < b.length; at += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, b.length - at);
    if (!b.subarray(at, at + n).equals(ZERO_PAGE.subarray(0, n))) return false;
  }
  return true;
}
