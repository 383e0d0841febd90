/**
 * Turns a version 2 frame (PIECES records: literal, compressed, zero and referenced pieces)
 * into the batch a plain version 1 frame would give before anything is applied, so the
 * journal and the apply path only ever see ordinary WRITE records. A reference resolves to a block of the same
 * batch or to one the content index points at, and only if the bytes found there hash to the
 * reference: the replica changes, so the index is a hint, never trusted. Bytes once found to
 * hash to a reference are kept (`VerifiedBlocks`), so a block that recurs is neither read nor
 * hashed again. Any reference that cannot be resolved fails the whole batch with the list of
 * missing hashes (nothing applied); the process server then sends those blocks as data.
 */
import { TidemarkError, FrameError } from '../../core/errors.ts';
import type { BufferPool } from '../../core/buffer-pool.ts';
import { decompressInto } from '../../core/lz4.ts';
import { CHECKSUM_BYTES, decodeRecords, FRAME_HEADER_BYTES, FRAME_VERSION, FRAME_VERSION_PIECES, MAX_FRAME_BYTES, RECORD_HEADER_BYTES, RecordType, verifyFrameOf } from '../../core/wire/frame.ts';
import { contentHash, hashName, PieceKind, readPieces, type Piece } from '../../core/wire/pieces.ts';
import { prepareRecords, releaseBatch, type PreparedBatch } from '../batch.ts';
import { ContentIndex, type BlockLocation } from './content-index.ts';
import { VerifiedBlocks } from './verified-blocks.ts';

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

/** Reads bytes of a stream's replica into `into`; false when the stream is gone. */
export type ReplicaReader = (machine: string, disk: string, offset: number, into: Buffer) => Promise<boolean>;

export interface ResolvedBatch {
  /** The batch with every PIECES record a plain WRITE, as a version 1 frame would have given it. */
  batch: PreparedBatch;
  /** Blocks with a content hash and where this batch puts them: index them once it is applied. */
  blocks: Array<{ name: string; offset: number; lengthBytes: number }>;
  /** Bytes that arrived as references. */
  referencedBytes: number;
}

export class ReferenceResolver {
  /** References resolved and missed since start (for /metrics). */
  resolvedCount = 0;
  missingCount = 0;

  constructor(private readonly read: ReplicaReader, readonly index = new ContentIndex(), readonly verified = new VerifiedBlocks()) {}

  /**
   * Checks a frame of version 1 or 2 (once) and prepares it for applying, resolving its
   * references; throws FrameError or MissingBlocksError. With `pool`, the resolved and
   * decompressed bytes live in its buffers: `releaseBatch` gives them back.
   */
  async resolve(buf: Buffer, pool?: BufferPool): Promise<ResolvedBatch> {
    const header = verifyFrameOf(buf, READABLE_VERSIONS);
    const records = decodeRecords(buf, header);
    if (header.version === FRAME_VERSION) return { batch: prepareRecords(header, records, pool), blocks: [], referencedBytes: 0 };
    const pieced = records.map((r) => (r.type === RecordType.PIECES ? readPieces(r.payload, r.lengthBytes, r.seq) : undefined));
    // Blocks of this batch, by hash: a reference may name one sent earlier or later in it.
    const local = new Map<string, Piece>();
    for (const ps of pieced) for (const p of ps ?? []) if (p.kind === PieceKind.DATA || p.kind === PieceKind.LZ4) local.set(hashName(p.hash), p);
    const found = new Map<string, Buffer>();
    const missing = new Set<string>();
    let referencedBytes = 0;
    const scratch: Buffer[] = [];
    const take = (bytes: number) => {
      const b = pool ? pool.acquire(bytes) : Buffer.allocUnsafe(bytes);
      scratch.push(b);
      return b;
    };
    try {
      for (const ps of pieced) {
        for (const p of ps ?? []) {
          if (p.kind !== PieceKind.REF) continue;
          referencedBytes += p.lengthBytes;
          const name = hashName(p.hash);
          if (found.has(name) || missing.has(name)) continue;
          const bytes = this.fromVerified(name, p.lengthBytes)
            ?? this.fromBatch(name, local.get(name), p.lengthBytes, p.hash, take)
            ?? (await this.fromReplica(name, p.lengthBytes, p.hash, take));
          if (bytes) found.set(name, bytes);
          else missing.add(name);
        }
      }
      this.resolvedCount += found.size;
      if (missing.size) {
        this.missingCount += missing.size;
        throw new MissingBlocksError([...missing]);
      }
      // What a version 1 frame of the same records would take.
      let resolvedBytes = FRAME_HEADER_BYTES + buf.readUInt8(48) + buf.readUInt8(49) + CHECKSUM_BYTES;
      let piecedBytes = 0;
      records.forEach((r, i) => {
        resolvedBytes += RECORD_HEADER_BYTES + (pieced[i] ? r.lengthBytes : r.payload.length);
        if (pieced[i]) piecedBytes += r.lengthBytes;
      });
      if (resolvedBytes > MAX_FRAME_BYTES) {
        throw new FrameError('too-large', `batch seq ${header.firstSeq}..${header.lastSeq} resolves to more than one frame can hold: frame of ${resolvedBytes} bytes exceeds ${MAX_FRAME_BYTES}`);
      }
      const blocks: ResolvedBatch['blocks'] = [];
      const batch = prepareRecords(header, records.map((r, i) => (pieced[i] ? { ...r, type: RecordType.WRITE, compressed: false, payload: EMPTY } : r)), pool);
      try {
        // Every PIECES record's bytes, back to back in one buffer.
        const all = piecedBytes ? (pool ? pool.acquire(piecedBytes) : Buffer.allocUnsafe(piecedBytes)) : EMPTY;
        if (piecedBytes && pool) batch.pooled.push(all);
        let start = 0;
        batch.records.forEach((p, i) => {
          const ps = pieced[i];
          if (!ps) return;
          const data = all.subarray(start, start + p.lengthBytes);
          start += p.lengthBytes;
          let at = 0;
          for (const piece of ps) {
            if (piece.kind === PieceKind.ZERO) data.fill(0, at, at + piece.lengthBytes);
            else {
              if (piece.kind === PieceKind.REF) data.set(found.get(hashName(piece.hash))!, at);
              else if (piece.kind === PieceKind.DATA) data.set(piece.data, at);
              else decompressPiece(piece, data, at, p.seq);
              blocks.push({ name: hashName(piece.hash), offset: p.offset + at, lengthBytes: piece.lengthBytes });
            }
            at += piece.lengthBytes;
          }
          p.data = data;
          p.stored = { ...p.stored, payload: data };
        });
      } catch (e) {
        releaseBatch(batch);
        throw e;
      }
      return { batch, blocks, referencedBytes };
    } finally {
      if (pool) for (const b of scratch) pool.release(b);
    }
  }

/** Indexes the blocks of an applied batch. */
  remember(machine: string, disk: string, blocks: ResolvedBatch['blocks']): void {
    for (const b of blocks) this.index.note(b.name, { machine, disk, offset: b.offset, lengthBytes: b.lengthBytes });
  }

  /** A block hashed here before and found to match: no read, no second hash. */
  private fromVerified(name: string, lengthBytes: number): Buffer | undefined {
    const b = this.verified.get(name);
    return b && b.length === lengthBytes ? b : undefined;
  }

  /** The bytes of a piece of this batch that a reference names, if they hash to it. */
  private fromBatch(name: string, p: Piece | undefined, lengthBytes: number, hash: Buffer, take: (bytes: number) => Buffer): Buffer | undefined {
    if (!p || p.lengthBytes !== lengthBytes || p.kind === PieceKind.ZERO || p.kind === PieceKind.REF) return undefined;
    let bytes: Buffer;
    if (p.kind === PieceKind.DATA) bytes = p.data;
    else decompressPiece(p, (bytes = take(lengthBytes)), 0, -1);
    if (!contentHash(bytes).equals(hash)) return undefined;
    this.verified.add(name, bytes);
    return bytes;
  }

  private async fromReplica(name: string, lengthBytes: number, hash: Buffer, take: (bytes: number) => Buffer): Promise<Buffer | undefined> {
    const at: BlockLocation | undefined = this.index.lookup(name);
    if (!at || at.lengthBytes !== lengthBytes) return undefined;
    const bytes = take(lengthBytes);
    let read: boolean;
    try {
      read = await this.read(at.machine, at.disk, at.offset, bytes);
    } catch {
      read = false;
    }
    if (read && contentHash(bytes).equals(hash)) {
      this.verified.add(name, bytes);
      return bytes;
    }
    this.index.forget(name);
    return undefined;
  }
}

const EMPTY = Buffer.alloc(0);

function decompressPiece(p: Piece, out: Buffer, at: number, seq: number): void {
  if (p.kind !== PieceKind.LZ4) throw new TypeError('only compressed pieces decompress');
  try {
    decompressInto(p.packed, p.lengthBytes, out, at);
  } catch (cause) {
    throw new FrameError('malformed', `record seq ${seq}: ${(cause as Error).message}`);
  }
}
