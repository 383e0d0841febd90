/**
 * The master target as its site link sees it: only its public HTTP API (docs/wire-format.md,
 * "Master target only"), never its internals.
 */
import type { BootRequest } from '../views/failover.ts';
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { getJson, getStream, remoteError, requestJson } from '../../core/http/client.ts';
import type { TlsIdentity } from '../../core/tls/tls-identity.ts';
import { TidemarkError } from '../../core/errors.ts';
import { MAX_MARKED_POINTS, MAX_RECENT_POINTS } from '../../core/control-plane/protocol.ts';
import { writevAll } from '../../core/file-io.ts';

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

/** `GET …/points/summary` (docs/views.md): newest first. */
export interface ApiPointsSummary {
  appliedSeq: number;
  oldest: ApiPoint | null;
  newest: ApiPoint | null;
  tiers: { fullSeconds: number | null; minuteTierSeconds: number };
  recent: ApiPoint[];
  marked: ApiPoint[];
  /** Set once space limits deleted journal inside the window (docs/journal-format.md, "Space limits"). */
  shortenedForSpaceTime?: string;
}

/** A view as `POST …/failover` names it (docs/views.md). */
export interface ApiView {
  id: string;
  disk: string;
  uri: string;
  writable: boolean;
  sizeBytes: number;
  point: { id: string; seq: number; time: string; kind: string };
}

/** What the replica of a test failover boots (the `boot` object of `POST …/failover`). */
export type ReplicaBoot = BootRequest;

/** The answer of `POST /v1/machines/{m}/failover {mode: 'test'}`. */
export interface ApiTestFailover {
  machine: string;
  pointTime: string;
  pointAgeSeconds: number;
  disks: Array<{ disk: string; point: { id: string; seq: number; time: string; kind: string }; view: ApiView }>;
  /** With `boot`: the replica machine and where its serial console is written (on the master target's host). */
  replica?: { name: string; consoleLogPath: string };
  seconds: number;
}

/** The export could not be made: the disk or a point is missing, or the master target failed. */
export class ExportError extends TidemarkError {}

const CHUNK_BYTES = 1024 * 1024;

export class MasterTargetApi {
  constructor(private readonly url: string, private readonly token?: string, private readonly tls?: TlsIdentity) {}

  /** The point with id `id` (ids are seqs), from the points listing. */
  async point(machine: string, disk: string, id: string, signal?: AbortSignal): Promise<ApiPoint | undefined> {
    const since = Math.max(0, Number(id) - 1);
    const r = await getJson<{ points: ApiPoint[] }>(this.url, `/v1/machines/${enc(machine)}/disks/${enc(disk)}/points?since=${since}&limit=1`, { token: this.token, tls: this.tls, signal });
    return r.points.find((p) => p.id === id);
  }

  /**
   * What the master target keeps of `machine`/`disk` (`GET …/points/summary`), or undefined
   * when it holds no such disk yet (404).
   */
  async pointsSummary(machine: string, disk: string, signal?: AbortSignal): Promise<ApiPointsSummary | undefined> {
    const r = await requestJson<ApiPointsSummary>(this.url, 'GET', `/v1/machines/${enc(machine)}/disks/${enc(disk)}/points/summary?recent=${MAX_RECENT_POINTS}&marked=${MAX_MARKED_POINTS}`,
      undefined, { token: this.token, tls: this.tls, signal });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw remoteError(this.url, r);
    return r.body;
  }

  /**
   * True when the master target serves views over NBD (`GET /v1/views` answers), false when
   * it was started without `--nbd` (409); anything else throws.
   */
  async servesViews(signal?: AbortSignal): Promise<boolean> {
    const r = await requestJson(this.url, 'GET', '/v1/views', undefined, { token: this.token, tls: this.tls, signal });
    if (r.status === 200) return true;
    if (r.status === 409) return false;
    throw remoteError(this.url, r);
  }

  /** The ids of the open views of `machine`. */
  async openViewIds(machine: string, signal?: AbortSignal): Promise<string[]> {
    const r = await getJson<{ views: Array<{ id: string }> }>(this.url, `/v1/views?machine=${enc(machine)}`, { token: this.token, tls: this.tls, signal });
    return r.views.map((v) => v.id);
  }

  /**
   * Starts a test failover of `machine` at `at`: writable views of every disk and, with
   * `boot`, the replica machine. Throws a RemoteError (409 while one runs) otherwise.
   */
  async testFailover(machine: string, at: string, boot: ReplicaBoot | undefined, signal?: AbortSignal): Promise<ApiTestFailover> {
    const r = await requestJson<ApiTestFailover>(this.url, 'POST', `/v1/machines/${enc(machine)}/failover`, { at, mode: 'test', ...(boot ? { boot } : {}) },
      { token: this.token, tls: this.tls, signal, timeoutMs: 120_000 });
    if (r.status !== 201) throw remoteError(this.url, r);
    return r.body;
  }

  /** Ends the test failover of `machine`: deletes its replica machine and closes its views. */
  async cleanup(machine: string, signal?: AbortSignal): Promise<{ closedViews: string[]; deletedReplica?: string }> {
    const r = await requestJson<{ closedViews: string[]; deletedReplica?: string }>(this.url, 'POST', `/v1/machines/${enc(machine)}/cleanup`, undefined,
      { token: this.token, tls: this.tls, signal, timeoutMs: 120_000 });
    if (r.status !== 200) throw remoteError(this.url, r);
    return r.body;
  }

  /**
   * Writes the disk at `at` (`latest`, a point id or an ISO time) to `path`: through
   * `path.tmp`, synced, then renamed, so `path` is never a partial image. All-zero chunks are
   * left as holes. Returns the point exported, the size and the SHA-256 of the whole image.
   */
  async exportImage(machine: string, disk: string, at: string, path: string, signal?: AbortSignal): Promise<ExportedImage> {
    let res: Response;
    try {
      res = await getStream(this.url, `/v1/machines/${enc(machine)}/disks/${enc(disk)}/image?at=${encodeURIComponent(at)}`, { token: this.token, tls: this.tls, signal });
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
          if (!piece.equals(zero.subarray(0, piece.length))) await writevAll(fh, [piece], offset + at);
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
