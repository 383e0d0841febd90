/**
 * Turns a version 2 frame (PIECES records: literal, compressed, zero and referenced pieces)
 * back into a plain version 1 frame before anything is applied, so the journal and the apply
 * path only ever see ordinary WRITE records. A reference resolves to a block of the same
 * batch or to one the content index points at, and only if the bytes found there hash to the
 * reference: the replica changes, so the index is a hint, never trusted. Any reference that
 * cannot be resolved fails the whole batch with the list of missing hashes (nothing applied);
 * the process server then sends those blocks as data.
 */
import { TidemarkError, FrameError } from '../../core/errors.ts';
import { decompress } from '../../core/lz4.ts';
import { decodeFrameOf, FRAME_VERSION, FRAME_VERSION_PIECES, RecordType } from '../../core/wire/frame.ts';
import { contentHash, hashName, PieceKind, readPieces, type Piece } from '../../core/wire/pieces.ts';
import { encodeRawFrame, type RawRecord } from '../../core/wire/raw-frame.ts';
import { ContentIndex, type BlockLocation } from './content-index.ts';

/** Frame versions this master target reads. */
export const READABLE_VERSIONS = [FRAME_VERSION, FRAME_VERSION_PIECES] as const;

/** Some references named blocks this master target does not hold (any more). */
export class MissingBlocksError extends TidemarkError {
  constructor(readonly missing: string[]) {
    super(`${missing.length} referenced block${missing.length === 1 ? '' : 's'} not held here; nothing of the batch was applied`, {
      hint: 'send those blocks as data (the process server does this by itself)',
    });
  }
}

/** Reads bytes of a stream's replica; undefined when the stream is gone. */
export type ReplicaReader = (machine: string, disk: string, offset: number, lengthBytes: number) => Promise<Buffer | undefined>;

export interface ResolvedFrame {
  /** A version 1 frame, as a process server of version 1 would have sent it. */
  frame: Buffer;
  /** Blocks with a content hash and where this batch puts them: index them once it is applied. */
  blocks: Array<{ name: string; offset: number; lengthBytes: number }>;
  /** Bytes that arrived as references. */
  referencedBytes: number;
}

export class ReferenceResolver {
  /** References resolved and missed since start (for /metrics). */
  resolvedCount = 0;
  missingCount = 0;

  constructor(private readonly read: ReplicaReader, readonly index = new ContentIndex()) {}

  /** Resolves a checked frame of version 1 or 2; throws FrameError or MissingBlocksError. */
  async resolve(buf: Buffer): Promise<ResolvedFrame> {
    const { header, records } = decodeFrameOf(buf, READABLE_VERSIONS);
    if (header.version === FRAME_VERSION) return { frame: buf, blocks: [], referencedBytes: 0 };
    const pieced = records.map((r) => (r.type === RecordType.PIECES ? readPieces(r.payload, r.lengthBytes, r.seq) : undefined));
    // Blocks of this batch, by hash: a reference may name one sent earlier or later in it.
    const local = new Map<string, Piece>();
    for (const ps of pieced) for (const p of ps ?? []) if (p.kind === PieceKind.DATA || p.kind === PieceKind.LZ4) local.set(hashName(p.hash), p);
    const found = new Map<string, Buffer>();
    const missing = new Set<string>();
    let referencedBytes = 0;
    for (const ps of pieced) {
      for (const p of ps ?? []) {
        if (p.kind !== PieceKind.REF) continue;
        referencedBytes += p.lengthBytes;
        const name = hashName(p.hash);
        if (found.has(name) || missing.has(name)) continue;
        const bytes = (await this.fromBatch(local.get(name), p.lengthBytes, p.hash)) ?? (await this.fromReplica(name, p.lengthBytes, p.hash));
        if (bytes) found.set(name, bytes);
        else missing.add(name);
      }
    }
    this.resolvedCount += found.size;
    if (missing.size) {
      this.missingCount += missing.size;
      throw new MissingBlocksError([...missing]);
    }
    const blocks: ResolvedFrame['blocks'] = [];
    const out: RawRecord[] = records.map((r, i) => {
      const ps = pieced[i];
      if (!ps) return { type: r.type, compressed: r.compressed, offset: r.offset, lengthBytes: r.lengthBytes, payload: r.payload };
      const data = Buffer.allocUnsafe(r.lengthBytes);
      let at = 0;
      for (const p of ps) {
        if (p.kind === PieceKind.ZERO) data.fill(0, at, at + p.lengthBytes);
        else {
          const bytes = p.kind === PieceKind.REF ? found.get(hashName(p.hash))! : pieceData(p, r.seq);
          bytes.copy(data, at);
          blocks.push({ name: hashName(p.hash), offset: r.offset + at, lengthBytes: p.lengthBytes });
        }
        at += p.lengthBytes;
      }
      return { type: RecordType.WRITE, offset: r.offset, lengthBytes: r.lengthBytes, payload: data };
    });
    try {
      return { frame: encodeRawFrame({ ...header, version: FRAME_VERSION }, out), blocks, referencedBytes };
    } catch (err) {
      throw new FrameError('too-large', `batch seq ${header.firstSeq}..${header.lastSeq} resolves to more than one frame can hold: ${(err as Error).message}`);
    }
  }

  /** Indexes the blocks of an applied batch. */
  remember(machine: string, disk: string, blocks: ResolvedFrame['blocks']): void {
    for (const b of blocks) this.index.note(b.name, { machine, disk, offset: b.offset, lengthBytes: b.lengthBytes });
  }

  private async fromBatch(p: Piece | undefined, lengthBytes: number, hash: Buffer): Promise<Buffer | undefined> {
    if (!p || p.lengthBytes !== lengthBytes || p.kind === PieceKind.ZERO || p.kind === PieceKind.REF) return undefined;
    const bytes = pieceData(p, -1);
    return contentHash(bytes).equals(hash) ? bytes : undefined;
  }

  private async fromReplica(name: string, lengthBytes: number, hash: Buffer): Promise<Buffer | undefined> {
    const at: BlockLocation | undefined = this.index.lookup(name);
    if (!at || at.lengthBytes !== lengthBytes) return undefined;
    let bytes: Buffer | undefined;
    try {
      bytes = await this.read(at.machine, at.disk, at.offset, lengthBytes);
    } catch {
      bytes = undefined;
    }
    if (bytes && contentHash(bytes).equals(hash)) return bytes;
    this.index.forget(name);
    return undefined;
  }
}

function pieceData(p: Piece, seq: number): Buffer {
  if (p.kind === PieceKind.DATA) return p.data;
  if (p.kind !== PieceKind.LZ4) throw new TypeError('only data pieces carry bytes');
  try {
    return decompress(p.packed, p.lengthBytes);
  } catch (cause) {
    throw new FrameError('malformed', `record seq ${seq}: ${(cause as Error).message}`);
  }
}
