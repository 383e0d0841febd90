/**
 * PIECES records (wire format version 2, docs/wire-format.md): one write whose data is given
 * piece by piece, each piece literal, LZ4-compressed, zero, or a reference to a block the
 * receiver already holds, named by its SHA-256. Only the process server writes them and only
 * the master target reads them; it turns them back into plain WRITE records before applying.
 */
import { createHash } from 'node:crypto';
import { FrameError } from '../errors.ts';

export const PieceKind = { DATA: 1, LZ4: 2, ZERO: 3, REF: 4 } as const;
export type PieceKind = (typeof PieceKind)[keyof typeof PieceKind];

/** Bytes of a content hash (SHA-256). */
export const CONTENT_HASH_BYTES = 32;
export const PIECE_HEADER_BYTES = 8;
/** Pieces split a write at multiples of this on the disk: the block size of scans and resyncs. */
export const PIECE_BLOCK_BYTES = 64 * 1024;

export type Piece =
  | { kind: typeof PieceKind.DATA; lengthBytes: number; hash: Buffer; data: Buffer }
  | { kind: typeof PieceKind.LZ4; lengthBytes: number; hash: Buffer; packed: Buffer }
  | { kind: typeof PieceKind.ZERO; lengthBytes: number }
  | { kind: typeof PieceKind.REF; lengthBytes: number; hash: Buffer };

/** SHA-256 of a block: collision-resistant, so a reference can never name other bytes. */
export function contentHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Bytes a piece takes in a record's payload. */
export function pieceBytes(p: Piece): number {
  switch (p.kind) {
    case PieceKind.DATA:
      return PIECE_HEADER_BYTES + CONTENT_HASH_BYTES + p.data.length;
    case PieceKind.LZ4:
      return PIECE_HEADER_BYTES + CONTENT_HASH_BYTES + 4 + p.packed.length;
    case PieceKind.ZERO:
      return PIECE_HEADER_BYTES;
    case PieceKind.REF:
      return PIECE_HEADER_BYTES + CONTENT_HASH_BYTES;
  }
}

/** Writes a piece's header, and its hash for every kind but ZERO, at `at`; returns the offset after them. */
export function writePieceHead(out: Buffer, at: number, kind: PieceKind, lengthBytes: number, hash?: Uint8Array): number {
  out.writeUInt32BE(kind << 24, at);
  out.writeUInt32BE(lengthBytes, at + 4);
  at += PIECE_HEADER_BYTES;
  if (kind === PieceKind.ZERO) return at;
  out.set(hash!, at);
  return at + CONTENT_HASH_BYTES;
}

/** Writes the pieces back to back into `out` at `at`; returns the offset after them. */
export function writePieces(pieces: readonly Piece[], out: Buffer, at: number): number {
  for (const p of pieces) {
    at = writePieceHead(out, at, p.kind, p.lengthBytes, p.kind === PieceKind.ZERO ? undefined : p.hash);
    if (p.kind === PieceKind.DATA) at += p.data.copy(out, at);
    else if (p.kind === PieceKind.LZ4) {
      out.writeUInt32BE(p.packed.length, at);
      at += 4;
      at += p.packed.copy(out, at);
    }
  }
  return at;
}

/**
 * Splits a PIECES payload into its pieces, refusing (FrameError `malformed`) an unknown kind,
 * a piece running past the payload, or pieces that do not add up to `lengthBytes`.
 */
export function readPieces(payload: Buffer, lengthBytes: number, seq: number): Piece[] {
  const bad = (what: string) => new FrameError('malformed', `record seq ${seq}: ${what}`);
  const pieces: Piece[] = [];
  let at = 0;
  let covered = 0;
  while (at < payload.length) {
    if (at + PIECE_HEADER_BYTES > payload.length) throw bad('piece header runs past the record');
    const kind = payload.readUInt8(at);
    const len = payload.readUInt32BE(at + 4);
    if (len === 0) throw bad('empty piece');
    at += PIECE_HEADER_BYTES;
    const take = (n: number) => {
      if (at + n > payload.length) throw bad('piece runs past the record');
      const b = payload.subarray(at, at + n);
      at += n;
      return b;
    };
    switch (kind) {
      case PieceKind.DATA: {
        const hash = take(CONTENT_HASH_BYTES);
        pieces.push({ kind, lengthBytes: len, hash, data: take(len) });
        break;
      }
      case PieceKind.LZ4: {
        const hash = take(CONTENT_HASH_BYTES);
        const n = take(4).readUInt32BE(0);
        pieces.push({ kind, lengthBytes: len, hash, packed: take(n) });
        break;
      }
      case PieceKind.ZERO:
        pieces.push({ kind, lengthBytes: len });
        break;
      case PieceKind.REF:
        pieces.push({ kind, lengthBytes: len, hash: take(CONTENT_HASH_BYTES) });
        break;
      default:
        throw bad(`unknown piece kind ${kind}`);
    }
    covered += len;
  }
  if (covered !== lengthBytes) throw bad(`pieces cover ${covered} bytes, the record ${lengthBytes}`);
  return pieces;
}

/** A content hash as it appears in JSON answers. */
export function hashName(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.length).toString('base64url');
}
