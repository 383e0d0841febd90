/**
 * The master target as its site link sees it: only its public HTTP API (docs/wire-format.md,
 * "Master target only"), never its internals.
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { getJson, getStream } from '../../core/http/client.ts';
import { TidemarkError } from '../../core/errors.ts';

/** A recovery point as `GET …/points` lists it. */
export interface ApiPoint {
  id: string;
  seq: number;
  time: string;
  kind: 'crash' | 'app' | 'group' | 'bookmark';
  consistent: boolean;
  name?: string;
}

export interface ExportedImage {
  /** The point id the master target exported (`X-Tidemark-Point`). */
  pointId: string;
  sizeBytes: number;
  sha256: string;
}

/** The export could not be made: the disk or a point is missing, or the master target failed. */
export class ExportError extends TidemarkError {}

const CHUNK_BYTES = 1024 * 1024;

export class MasterTargetApi {
  constructor(private readonly url: string, private readonly token?: string) {}

  /** The point with id `id` (ids are seqs), from the points listing. */
  async point(machine: string, disk: string, id: string, signal?: AbortSignal): Promise<ApiPoint | undefined> {
    const since = Math.max(0, Number(id) - 1);
    const r = await getJson<{ points: ApiPoint[] }>(this.url, `/v1/machines/${enc(machine)}/disks/${enc(disk)}/points?since=${since}&limit=1`, { token: this.token, signal });
    return r.points.find((p) => p.id === id);
  }

  /**
   * Writes the disk at `at` (`latest`, a point id or an ISO time) to `path`: through
   * `path.tmp`, synced, then renamed, so `path` is never a partial image. All-zero chunks are
   * left as holes. Returns the point exported, the size and the SHA-256 of the whole image.
   */
  async exportImage(machine: string, disk: string, at: string, path: string, signal?: AbortSignal): Promise<ExportedImage> {
    let res: Response;
    try {
      res = await getStream(this.url, `/v1/machines/${enc(machine)}/disks/${enc(disk)}/image?at=${encodeURIComponent(at)}`, { token: this.token, signal });
    } catch (cause) {
      throw new ExportError(`cannot export ${machine}/${disk} at ${at}: ${(cause as Error).message}`, { cause });
    }
    const pointId = res.headers.get('x-tidemark-point') ?? '';
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    const hash = createHash('sha256');
    let offset = 0;
    try {
      const zero = Buffer.alloc(CHUNK_BYTES);
      for await (const chunk of Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>)) {
        const b = chunk as Buffer;
        hash.update(b);
        // Holes for zeros: compare in chunk-sized slices against a zero buffer.
        for (let at = 0; at < b.length; at += CHUNK_BYTES) {
          const piece = b.subarray(at, Math.min(b.length, at + CHUNK_BYTES));
          if (!piece.equals(zero.subarray(0, piece.length))) await fh.write(piece, 0, piece.length, offset + at);
        }
        offset += b.length;
      }
      const expected = Number(res.headers.get('content-length'));
      if (Number.isFinite(expected) && expected !== offset) throw new ExportError(`export of ${machine}/${disk} ended after ${offset} of ${expected} bytes`);
      await fh.truncate(offset);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, path);
    return { pointId, sizeBytes: offset, sha256: hash.digest('hex') };
  }
}

function enc(name: string): string {
  return encodeURIComponent(name);
}
