/**
 * Journal segments, format version 3 (docs/journal-format.md): the segment header and the
 * checksummed items (BEGIN, TAG, UNDO, RESULT, COMMIT) that follow it. Version 2 segments
 * (no RESULT) are still read.
 */
import type { FileHandle } from 'node:fs/promises';
import { xxh64Of } from '../core/hash.ts';
import { decompress } from '../core/lz4.ts';
import { WrittenMap, type WrittenEncoding } from './written-map.ts';

export const SEGMENT_MAGIC = Buffer.from('TDMJ', 'latin1');
export const JOURNAL_VERSION = 3;
/** Versions this build reads: 2 differs only in having no RESULT items. */
const READABLE_VERSIONS = new Set([2, 3]);
const SEGMENT_FIXED_BYTES = 48;
export const ITEM_HEADER_BYTES = 8;
export const ITEM_CHECKSUM_BYTES = 8;

export enum ItemType {
  BEGIN = 1,
  TAG = 2,
  UNDO = 3,
  COMMIT = 4,
  RESULT = 5,
}

export enum UndoEncoding {
  RAW = 0,
  ZERO = 1,
  LZ4 = 2,
}

/** A recovery point as stored in a segment header (the TAG schema). */
export interface StoredPoint {
  kind: string;
  timeMs: number;
  name?: string;
}

export interface SegmentHeader {
  version: number;
  headerBytes: number;
  firstSeq: number;
  createdMs: number;
  diskBytes: number;
  basePoint?: StoredPoint;
  /** Blocks of the replica that may hold non-zero bytes at `firstSeq − 1`. */
  written: WrittenMap;
}

export interface Begin {
  firstSeq: number;
  lastSeq: number;
  timeMs: number;
  appliedMs: number;
  prevDiskBytes: number;
  diskBytes: number;
  frameFlags: number;
}

export interface Undo {
  seq: number;
  offset: number;
  lengthBytes: number;
  encoding: UndoEncoding;
  payload: Buffer;
}

export interface Commit {
  lastSeq: number;
  committedMs: number;
}

/** A segment or item that does not verify: the end of the valid log, or corruption. */
export class JournalFormatError extends Error {}

/** File name of the segment whose first seq is `firstSeq`: fixed-width hex, so name order is seq order. */
export function segmentName(firstSeq: number): string {
  return firstSeq.toString(16).padStart(16, '0') + '.seg';
}

/** The first seq a segment file name stands for, or undefined for other names. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^([0-9a-f]{16})\.seg$/.exec(name);
  return m ? Number.parseInt(m[1], 16) : undefined;
}

export function encodeSegmentHeader(h: Omit<SegmentHeader, 'version' | 'headerBytes'>): Buffer {
  const point = h.basePoint ? Buffer.from(JSON.stringify(h.basePoint), 'utf8') : Buffer.alloc(0);
  const map = h.written.encode(h.diskBytes);
  const total = SEGMENT_FIXED_BYTES + point.length + map.bytes.length + ITEM_CHECKSUM_BYTES;
  const out = Buffer.alloc(total);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt16BE(JOURNAL_VERSION, 4);
  out.writeUInt32BE(total, 8);
  out.writeBigUInt64BE(BigInt(h.firstSeq), 16);
  out.writeBigUInt64BE(BigInt(h.createdMs), 24);
  out.writeBigUInt64BE(BigInt(h.diskBytes), 32);
  out.writeUInt16BE(point.length, 40);
  out.writeUInt8(map.encoding, 42);
  out.writeUInt32BE(map.bytes.length, 44);
  point.copy(out, SEGMENT_FIXED_BYTES);
  map.bytes.copy(out, SEGMENT_FIXED_BYTES + point.length);
  xxh64Of(out.subarray(0, total - ITEM_CHECKSUM_BYTES)).copy(out, total - ITEM_CHECKSUM_BYTES);
  return out;
}

/** Reads and verifies a segment header from the start of a segment file. */
export async function readSegmentHeader(fh: FileHandle, path: string): Promise<SegmentHeader> {
  const fixed = Buffer.alloc(SEGMENT_FIXED_BYTES);
  const { bytesRead } = await fh.read(fixed, 0, SEGMENT_FIXED_BYTES, 0);
  if (bytesRead < SEGMENT_FIXED_BYTES) throw new JournalFormatError(`journal segment ${path} is shorter than its header`);
  if (!fixed.subarray(0, 4).equals(SEGMENT_MAGIC)) throw new JournalFormatError(`${path} is not a journal segment (bad magic)`);
  const version = fixed.readUInt16BE(4);
  if (!READABLE_VERSIONS.has(version)) {
    throw new JournalFormatError(`journal segment ${path} has version ${version}; this build reads versions ${[...READABLE_VERSIONS].join(' and ')}`);
  }
  const headerBytes = fixed.readUInt32BE(8);
  const pointBytes = fixed.readUInt16BE(40);
  const mapEncoding = fixed.readUInt8(42) as WrittenEncoding;
  const mapBytes = fixed.readUInt32BE(44);
  if (headerBytes !== SEGMENT_FIXED_BYTES + pointBytes + mapBytes + ITEM_CHECKSUM_BYTES) {
    throw new JournalFormatError(`journal segment ${path} has an inconsistent header length`);
  }
  const all = Buffer.alloc(headerBytes);
  const r = await fh.read(all, 0, headerBytes, 0);
  if (r.bytesRead < headerBytes) throw new JournalFormatError(`journal segment ${path} is shorter than its header`);
  const sum = all.subarray(headerBytes - ITEM_CHECKSUM_BYTES);
  if (!xxh64Of(all.subarray(0, headerBytes - ITEM_CHECKSUM_BYTES)).equals(sum)) {
    throw new JournalFormatError(`journal segment ${path} has a bad header checksum`);
  }
  const diskBytes = u64(all, 32);
  let written: WrittenMap;
  try {
    written = WrittenMap.decode(mapEncoding, all.subarray(SEGMENT_FIXED_BYTES + pointBytes, SEGMENT_FIXED_BYTES + pointBytes + mapBytes), diskBytes);
  } catch (err) {
    throw new JournalFormatError(`journal segment ${path} has a bad written map: ${(err as Error).message}`);
  }
  const header: SegmentHeader = {
    version,
    headerBytes,
    firstSeq: u64(all, 16),
    createdMs: u64(all, 24),
    diskBytes,
    written,
  };
  if (pointBytes > 0) header.basePoint = JSON.parse(all.toString('utf8', SEGMENT_FIXED_BYTES, SEGMENT_FIXED_BYTES + pointBytes)) as StoredPoint;
  return header;
}

function u64(b: Buffer, at: number): number {
  const v = b.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new JournalFormatError('journal field out of range');
  return Number(v);
}

/** Frames one item: header, body parts, checksum. Returns the parts to write, in order. */
export function encodeItem(type: ItemType, ...body: Buffer[]): Buffer[] {
  const bodyBytes = body.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(ITEM_HEADER_BYTES);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(bodyBytes, 4);
  return [head, ...body, xxh64Of(head, ...body)];
}

export function encodeBegin(b: Begin): Buffer[] {
  const body = Buffer.alloc(56);
  body.writeBigUInt64BE(BigInt(b.firstSeq), 0);
  body.writeBigUInt64BE(BigInt(b.lastSeq), 8);
  body.writeBigUInt64BE(BigInt(b.timeMs), 16);
  body.writeBigUInt64BE(BigInt(b.appliedMs), 24);
  body.writeBigUInt64BE(BigInt(b.prevDiskBytes), 32);
  body.writeBigUInt64BE(BigInt(b.diskBytes), 40);
  body.writeUInt16BE(b.frameFlags, 48);
  return encodeItem(ItemType.BEGIN, body);
}

export function decodeBegin(body: Buffer): Begin {
  if (body.length !== 56) throw new JournalFormatError('BEGIN item has a wrong length');
  return {
    firstSeq: u64(body, 0),
    lastSeq: u64(body, 8),
    timeMs: u64(body, 16),
    appliedMs: u64(body, 24),
    prevDiskBytes: u64(body, 32),
    diskBytes: u64(body, 40),
    frameFlags: body.readUInt16BE(48),
  };
}

export function encodeTag(seq: number, json: Buffer): Buffer[] {
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(BigInt(seq), 0);
  return encodeItem(ItemType.TAG, head, json);
}

export function decodeTag(body: Buffer): { seq: number; point: StoredPoint } {
  if (body.length < 8) throw new JournalFormatError('TAG item too short');
  return { seq: u64(body, 0), point: JSON.parse(body.toString('utf8', 8)) as StoredPoint };
}

const UNDO_HEAD_BYTES = 24;
/** Where an UNDO item's old bytes start, counted from the start of the item. */
export const UNDO_PAYLOAD_AT = ITEM_HEADER_BYTES + UNDO_HEAD_BYTES;

/** An UNDO item as parts to write: one head (item header and UNDO fields), the payload if any, the checksum. */
export function encodeUndo(seq: number, offset: number, lengthBytes: number, encoding: UndoEncoding, payload?: Buffer): Buffer[] {
  const bodyBytes = UNDO_HEAD_BYTES + (payload?.length ?? 0);
  const head = Buffer.alloc(UNDO_PAYLOAD_AT);
  head.writeUInt8(ItemType.UNDO, 0);
  head.writeUInt32BE(bodyBytes, 4);
  head.writeBigUInt64BE(BigInt(seq), 8);
  head.writeBigUInt64BE(BigInt(offset), 16);
  head.writeUInt32BE(lengthBytes, 24);
  head.writeUInt8(encoding, 28);
  if (payload && payload.length) return [head, payload, xxh64Of(head, payload)];
  return [head, xxh64Of(head)];
}

export function decodeUndo(body: Buffer): Undo {
  if (body.length < UNDO_HEAD_BYTES) throw new JournalFormatError('UNDO item too short');
  const u: Undo = {
    seq: u64(body, 0),
    offset: u64(body, 8),
    lengthBytes: body.readUInt32BE(16),
    encoding: body.readUInt8(20),
    payload: body.subarray(UNDO_HEAD_BYTES),
  };
  const ok =
    (u.encoding === UndoEncoding.RAW && u.payload.length === u.lengthBytes) ||
    (u.encoding === UndoEncoding.ZERO && u.payload.length === 0) ||
    (u.encoding === UndoEncoding.LZ4 && u.payload.length >= 4);
  if (!ok) throw new JournalFormatError(`UNDO item for seq ${u.seq} has an inconsistent payload`);
  return u;
}

/** The old bytes an UNDO item restores; undefined means all zero. */
export function undoBytes(u: Undo): Buffer | undefined {
  switch (u.encoding) {
    case UndoEncoding.RAW:
      return u.payload;
    case UndoEncoding.ZERO:
      return undefined;
    case UndoEncoding.LZ4:
      return decompress(u.payload, u.lengthBytes);
  }
}

/** What one record range holds once its batch is applied: RESULT items list these. */
export interface ResultRange {
  offset: number;
  lengthBytes: number;
  /** True: all zero; otherwise `hash` is the xxh64 of the bytes. */
  zero: boolean;
  hash?: Buffer;
}

const RESULT_RANGE_BYTES = 24;

export function encodeResult(ranges: ResultRange[]): Buffer[] {
  const body = Buffer.alloc(8 + ranges.length * RESULT_RANGE_BYTES);
  body.writeUInt32BE(ranges.length, 0);
  ranges.forEach((r, i) => {
    const at = 8 + i * RESULT_RANGE_BYTES;
    body.writeBigUInt64BE(BigInt(r.offset), at);
    body.writeUInt32BE(r.lengthBytes, at + 8);
    body.writeUInt8(r.zero ? 1 : 0, at + 12);
    if (!r.zero) r.hash!.copy(body, at + 16);
  });
  return encodeItem(ItemType.RESULT, body);
}

export function decodeResult(body: Buffer): ResultRange[] {
  const n = body.length >= 8 ? body.readUInt32BE(0) : -1;
  if (n < 0 || body.length !== 8 + n * RESULT_RANGE_BYTES) throw new JournalFormatError('RESULT item has a wrong length');
  const out: ResultRange[] = [];
  for (let i = 0; i < n; i++) {
    const at = 8 + i * RESULT_RANGE_BYTES;
    const zero = body.readUInt8(at + 12) === 1;
    out.push({ offset: u64(body, at), lengthBytes: body.readUInt32BE(at + 8), zero, ...(zero ? {} : { hash: Buffer.from(body.subarray(at + 16, at + 24)) }) });
  }
  return out;
}

export function encodeCommit(c: Commit): Buffer[] {
  const body = Buffer.alloc(16);
  body.writeBigUInt64BE(BigInt(c.lastSeq), 0);
  body.writeBigUInt64BE(BigInt(c.committedMs), 8);
  return encodeItem(ItemType.COMMIT, body);
}

export function decodeCommit(body: Buffer): Commit {
  if (body.length !== 16) throw new JournalFormatError('COMMIT item has a wrong length');
  return { lastSeq: u64(body, 0), committedMs: u64(body, 8) };
}

/** One item read back: where it starts, how long it is in the file, its body. */
export interface ItemAt {
  type: ItemType;
  at: number;
  itemBytes: number;
  body: Buffer;
}

const WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Reads items of one segment file sequentially (buffered), up to `end`. `next()` returns
 * undefined at `end`, and throws JournalFormatError for an item that is truncated or fails its
 * checksum; `position` is then the start of the bad item.
 */
export class ItemReader {
  position: number;
  private win = Buffer.alloc(0);
  private winAt = 0;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    this.position = start;
  }

  private async bytes(at: number, n: number): Promise<Buffer> {
    if (at >= this.winAt && at + n <= this.winAt + this.win.length) {
      return this.win.subarray(at - this.winAt, at - this.winAt + n);
    }
    const want = Math.min(Math.max(n, WINDOW_BYTES), this.end - at);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await this.fh.read(buf, 0, want, at);
    this.win = buf.subarray(0, bytesRead);
    this.winAt = at;
    if (bytesRead < n) throw new JournalFormatError(`journal item at ${at} is truncated`);
    return this.win.subarray(0, n);
  }

  async next(): Promise<ItemAt | undefined> {
    const at = this.position;
    if (at >= this.end) return undefined;
    if (at + ITEM_HEADER_BYTES + ITEM_CHECKSUM_BYTES > this.end) throw new JournalFormatError(`journal item at ${at} is truncated`);
    const head = await this.bytes(at, ITEM_HEADER_BYTES);
    const type = head.readUInt8(0);
    const bodyBytes = head.readUInt32BE(4);
    const itemBytes = ITEM_HEADER_BYTES + bodyBytes + ITEM_CHECKSUM_BYTES;
    if (type < ItemType.BEGIN || type > ItemType.RESULT) throw new JournalFormatError(`journal item at ${at} has unknown type ${type}`);
    if (at + itemBytes > this.end) throw new JournalFormatError(`journal item at ${at} is truncated`);
    const all = await this.bytes(at, itemBytes);
    const sum = all.subarray(itemBytes - ITEM_CHECKSUM_BYTES);
    if (!xxh64Of(all.subarray(0, itemBytes - ITEM_CHECKSUM_BYTES)).equals(sum)) {
      throw new JournalFormatError(`journal item at ${at} fails its checksum`);
    }
    this.position = at + itemBytes;
    // Each refill allocates a new window, so the body stays valid after later reads.
    return { type, at, itemBytes, body: all.subarray(ITEM_HEADER_BYTES, ITEM_HEADER_BYTES + bodyBytes) };
  }
}
