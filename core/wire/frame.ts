/**
 * Batch frames, format version 1 (docs/wire-format.md). A frame carries one contiguous range
 * of a disk stream's sequence numbers: one record per sequence number, in order.
 */
import { FrameError } from '../errors.ts';
import { xxh64Of } from '../hash.ts';
import { compressIfWorthwhile, decompress } from '../lz4.ts';

export const FRAME_MAGIC = Buffer.from('TDMK', 'latin1');
export const FRAME_VERSION = 1;
/** Version of frames that may carry PIECES records (process server to master target only). */
export const FRAME_VERSION_PIECES = 2;
export const FRAME_HEADER_BYTES = 52;
export const RECORD_HEADER_BYTES = 24;
export const CHECKSUM_BYTES = 8;
/** Largest frame a reader accepts. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Frame flags. */
export const FrameFlag = {
  /** The records belong to the disk's initial synchronisation. */
  INITIAL_SYNC: 1 << 0,
  /** The records belong to a resynchronisation. */
  RESYNC: 1 << 1,
  /** Every record boundary in this frame is a crash-consistent point (tap mode). */
  ORDERED: 1 << 2,
} as const;

export enum RecordType {
  WRITE = 1,
  ZERO = 2,
  TRIM = 3,
  TAG = 4,
  /** Version 2 frames only: a write given as pieces (core/wire/pieces.ts). */
  PIECES = 5,
  /**
   * Tap change logs only, never on the wire: a write whose data the agent's backing disk
   * holds (docs/agent-state.md, "Held writes"). Readers reject it.
   */
  HELD = 6,
}

const RECORD_FLAG_LZ4 = 1 << 0;

/** Kinds of recovery point a TAG record can mark. */
export type PointKind = 'crash' | 'app' | 'group' | 'bookmark';
export const POINT_KINDS: readonly PointKind[] = ['crash', 'app', 'group', 'bookmark'];

export interface Tag {
  kind: PointKind;
  /** Source wall-clock time of the point, ms since the epoch. */
  timeMs: number;
  name?: string;
}

export type BatchRecord =
  | { type: RecordType.WRITE; offset: number; data: Buffer }
  | { type: RecordType.ZERO; offset: number; lengthBytes: number }
  | { type: RecordType.TRIM; offset: number; lengthBytes: number }
  | { type: RecordType.TAG; tag: Tag };

/** What a frame says about itself, readable without decompressing any payload. */
export interface FrameHeader {
  version: number;
  flags: number;
  firstSeq: number;
  lastSeq: number;
  /** Source wall-clock time of the last record, ms since the epoch. */
  timeMs: number;
  diskBytes: number;
  recordCount: number;
  totalBytes: number;
  machine: string;
  disk: string;
}

export interface BatchInput {
  machine: string;
  disk: string;
  firstSeq: number;
  timeMs: number;
  diskBytes: number;
  flags?: number;
  records: BatchRecord[];
  /** Compress WRITE payloads with LZ4 where it shrinks them (default true). */
  compress?: boolean;
}

/** A record as stored in a frame: payload still as sent (maybe compressed). */
export interface StoredRecord {
  type: RecordType;
  seq: number;
  offset: number;
  lengthBytes: number;
  compressed: boolean;
  payload: Buffer;
}

export interface DecodedFrame {
  header: FrameHeader;
  records: StoredRecord[];
}

/**
 * Encodes a batch into one frame: into `into` when it has room (a sender reusing its buffers
 * spares the garbage collector a large allocation per batch), else into a new buffer.
 */
export function encodeFrame(input: BatchInput, into?: Buffer): Buffer {
  const machine = Buffer.from(input.machine, 'utf8');
  const disk = Buffer.from(input.disk, 'utf8');
  if (machine.length === 0 || machine.length > 255 || disk.length === 0 || disk.length > 255) {
    throw new RangeError('machine and disk names must be 1-255 bytes');
  }
  if (input.records.length === 0) throw new RangeError('a frame needs at least one record');
  if (!Number.isSafeInteger(input.firstSeq) || input.firstSeq < 1) throw new RangeError('firstSeq must be a positive integer');
  const compress = input.compress ?? true;
  const parts: Buffer[] = [];
  let total = FRAME_HEADER_BYTES + machine.length + disk.length;
  for (const r of input.records) {
    const rh = Buffer.alloc(RECORD_HEADER_BYTES);
    let payload: Buffer = EMPTY;
    let flags = 0;
    let offset = 0;
    let lengthBytes = 0;
    switch (r.type) {
      case RecordType.WRITE: {
        offset = r.offset;
        lengthBytes = r.data.length;
        const packed = compress ? compressIfWorthwhile(r.data) : undefined;
        if (packed) {
          payload = packed;
          flags |= RECORD_FLAG_LZ4;
        } else payload = r.data;
        break;
      }
      case RecordType.ZERO:
      case RecordType.TRIM:
        offset = r.offset;
        lengthBytes = r.lengthBytes;
        break;
      case RecordType.TAG:
        payload = Buffer.from(JSON.stringify(r.tag), 'utf8');
        break;
    }
    rh.writeUInt8(r.type, 0);
    rh.writeUInt8(flags, 1);
    rh.writeUInt32BE(payload.length, 4);
    rh.writeBigUInt64BE(BigInt(offset), 8);
    rh.writeUInt32BE(lengthBytes, 16);
    parts.push(rh);
    if (payload.length) parts.push(payload);
    total += RECORD_HEADER_BYTES + payload.length;
  }
  total += CHECKSUM_BYTES;
  if (total > MAX_FRAME_BYTES) throw new RangeError(`frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  FRAME_MAGIC.copy(h, 0);
  h.writeUInt16BE(FRAME_VERSION, 4);
  h.writeUInt16BE(input.flags ?? 0, 6);
  h.writeBigUInt64BE(BigInt(input.firstSeq), 8);
  h.writeBigUInt64BE(BigInt(input.firstSeq + input.records.length - 1), 16);
  h.writeBigUInt64BE(BigInt(Math.trunc(input.timeMs)), 24);
  h.writeBigUInt64BE(BigInt(input.diskBytes), 32);
  h.writeUInt32BE(input.records.length, 40);
  h.writeUInt32BE(total, 44);
  h.writeUInt8(machine.length, 48);
  h.writeUInt8(disk.length, 49);
  const out = into && into.length >= total ? into.subarray(0, total) : Buffer.allocUnsafe(total);
  let at = 0;
  for (const b of [h, machine, disk, ...parts]) {
    b.copy(out, at);
    at += b.length;
  }
  xxh64Of(out.subarray(0, at)).copy(out, at);
  return out;
}

const EMPTY = Buffer.alloc(0);

function u64(buf: Buffer, at: number, field: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError('malformed', `frame field ${field} is out of range`);
  return Number(v);
}

/**
 * Reads and checks a frame's fixed header from the start of `buf` (which may hold only the
 * header). Refuses a wrong magic, an unknown version or an impossible length.
 */
export function readFrameHeader(buf: Buffer, versions: readonly number[] = [FRAME_VERSION]): FrameHeader {
  if (buf.length < FRAME_HEADER_BYTES) {
    throw new FrameError('truncated', `truncated frame: ${buf.length} bytes, the header alone needs ${FRAME_HEADER_BYTES}`);
  }
  if (!buf.subarray(0, 4).equals(FRAME_MAGIC)) throw new FrameError('bad-magic', 'not a tidemark frame (bad magic)');
  const version = buf.readUInt16BE(4);
  if (!versions.includes(version)) {
    throw new FrameError('unsupported-version', `unsupported frame version ${version} (this build reads version ${versions.join(' or ')})`);
  }
  const totalBytes = buf.readUInt32BE(44);
  if (totalBytes > MAX_FRAME_BYTES) throw new FrameError('too-large', `frame declares ${totalBytes} bytes, more than the ${MAX_FRAME_BYTES} allowed`);
  const machineLen = buf.readUInt8(48);
  const diskLen = buf.readUInt8(49);
  const minimum = FRAME_HEADER_BYTES + machineLen + diskLen + CHECKSUM_BYTES;
  if (totalBytes < minimum) throw new FrameError('malformed', `frame declares ${totalBytes} bytes, less than its header needs`);
  const firstSeq = u64(buf, 8, 'firstSeq');
  const lastSeq = u64(buf, 16, 'lastSeq');
  const recordCount = buf.readUInt32BE(40);
  if (firstSeq < 1 || recordCount < 1 || lastSeq !== firstSeq + recordCount - 1) {
    throw new FrameError('malformed', `frame sequence range ${firstSeq}..${lastSeq} does not match its ${recordCount} records`);
  }
  const names = buf.length >= FRAME_HEADER_BYTES + machineLen + diskLen;
  return {
    version,
    flags: buf.readUInt16BE(6),
    firstSeq,
    lastSeq,
    timeMs: u64(buf, 24, 'timeMs'),
    diskBytes: u64(buf, 32, 'diskBytes'),
    recordCount,
    totalBytes,
    machine: names ? buf.toString('utf8', FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + machineLen) : '',
    disk: names ? buf.toString('utf8', FRAME_HEADER_BYTES + machineLen, FRAME_HEADER_BYTES + machineLen + diskLen) : '',
  };
}

/** Checks a whole frame (length and checksum) and returns its header; payloads are not parsed. */
export function verifyFrame(buf: Buffer): FrameHeader {
  return verifyFrameOf(buf, [FRAME_VERSION]);
}

/** `verifyFrame` for a reader of the given versions. */
export function verifyFrameOf(buf: Buffer, versions: readonly number[]): FrameHeader {
  const header = readFrameHeader(buf, versions);
  if (buf.length < header.totalBytes) {
    throw new FrameError('truncated', `truncated frame: ${buf.length} of ${header.totalBytes} bytes`);
  }
  if (buf.length > header.totalBytes) {
    throw new FrameError('malformed', `${buf.length - header.totalBytes} unexpected bytes after the frame`);
  }
  const body = header.totalBytes - CHECKSUM_BYTES;
  if (!xxh64Of(buf.subarray(0, body)).equals(buf.subarray(body, header.totalBytes))) {
    throw new FrameError('bad-checksum', `frame checksum mismatch (seq ${header.firstSeq}..${header.lastSeq})`);
  }
  return header;
}

/** Checks a frame and splits it into records; payloads stay as sent (see `recordData`). */
export function decodeFrame(buf: Buffer): DecodedFrame {
  return decodeFrameOf(buf, [FRAME_VERSION]);
}

/** `decodeFrame` for a reader of the given versions (PIECES records are payloads still: core/wire/pieces.ts). */
export function decodeFrameOf(buf: Buffer, versions: readonly number[]): DecodedFrame {
  const header = verifyFrameOf(buf, versions);
  return { header, records: decodeRecords(buf, header) };
}

/**
 * Splits a frame whose length and checksum were already verified (`verifyFrameOf` gave
 * `header`) into records, with every other reader rule checked; payloads are views of `buf`.
 * For a reader that holds a verified frame and must not hash it twice.
 */
export function decodeRecords(buf: Buffer, header: FrameHeader): StoredRecord[] {
  const end = header.totalBytes - CHECKSUM_BYTES;
  let at = FRAME_HEADER_BYTES + buf.readUInt8(48) + buf.readUInt8(49);
  const records: StoredRecord[] = [];
  for (let i = 0; i < header.recordCount; i++) {
    if (at + RECORD_HEADER_BYTES > end) throw new FrameError('malformed', `record ${i} runs past the end of the frame`);
    const type = buf.readUInt8(at);
    const flags = buf.readUInt8(at + 1);
    const payloadBytes = buf.readUInt32BE(at + 4);
    const offset = u64(buf, at + 8, `record ${i} offset`);
    const lengthBytes = buf.readUInt32BE(at + 16);
    at += RECORD_HEADER_BYTES;
    if (at + payloadBytes > end) throw new FrameError('malformed', `record ${i} payload runs past the end of the frame`);
    const payload = buf.subarray(at, at + payloadBytes);
    at += payloadBytes;
    const compressed = (flags & RECORD_FLAG_LZ4) !== 0;
    switch (type) {
      case RecordType.WRITE:
        if (lengthBytes === 0) throw new FrameError('malformed', `record ${i}: empty write`);
        if (!compressed && payloadBytes !== lengthBytes) {
          throw new FrameError('malformed', `record ${i}: write of ${lengthBytes} bytes carries ${payloadBytes}`);
        }
        break;
      case RecordType.ZERO:
      case RecordType.TRIM:
        if (payloadBytes !== 0 || compressed) throw new FrameError('malformed', `record ${i}: zero/trim record carries a payload`);
        break;
      case RecordType.TAG:
        parseTag(payload, i);
        break;
      case RecordType.HELD:
        throw new FrameError('malformed', `record ${i}: a held write belongs to an agent's change log, not to a batch`);
      case RecordType.PIECES:
        if (header.version < FRAME_VERSION_PIECES || compressed || lengthBytes === 0) throw new FrameError('malformed', `record ${i}: unexpected pieces record`);
        break;
      default:
        throw new FrameError('malformed', `record ${i}: unknown record type ${type}`);
    }
    if (offset + lengthBytes > header.diskBytes) {
      throw new FrameError('malformed', `record ${i}: range ${offset}+${lengthBytes} is beyond the disk's ${header.diskBytes} bytes`);
    }
    records.push({ type, seq: header.firstSeq + i, offset, lengthBytes, compressed, payload });
  }
  if (at !== end) throw new FrameError('malformed', `${end - at} stray bytes after the last record`);
  return records;
}

/** The bytes a WRITE record writes, decompressed and length-checked. */
export function recordData(r: StoredRecord): Buffer {
  if (r.type !== RecordType.WRITE) throw new TypeError('only WRITE records carry data');
  if (!r.compressed) return r.payload;
  try {
    return decompress(r.payload, r.lengthBytes);
  } catch (cause) {
    throw new FrameError('malformed', `record seq ${r.seq}: ${(cause as Error).message}`);
  }
}

/** The tag a TAG record carries. */
export function recordTag(r: StoredRecord): Tag {
  return parseTag(r.payload, r.seq);
}

function parseTag(payload: Buffer, where: number): Tag {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new FrameError('malformed', `record ${where}: tag is not JSON`);
  }
  const t = v as Partial<Tag>;
  if (!t || typeof t !== 'object' || !POINT_KINDS.includes(t.kind as PointKind) || !Number.isSafeInteger(t.timeMs)) {
    throw new FrameError('malformed', `record ${where}: tag needs a known kind and an integer timeMs`);
  }
  if (t.name !== undefined && (typeof t.name !== 'string' || t.name.length > 200)) {
    throw new FrameError('malformed', `record ${where}: tag name must be a string of at most 200 characters`);
  }
  return { kind: t.kind as PointKind, timeMs: t.timeMs as number, ...(t.name !== undefined ? { name: t.name } : {}) };
}
