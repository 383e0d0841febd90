/**
 * Copies of held writes' data, saved before the consumer changes bytes they still depend on
 * (docs/agent-state.md, "Held writes"). Append-only segment files under `DIR/<disk>/held/`;
 * an entry is a 32-byte header, the data and an xxh64 of both, so a torn tail is found and
 * cut on open. A segment goes once every write it holds a copy of was acknowledged.
 *
 *   0  magic "TMHC"   4  u16 version (1)   6  u16 0   8  u64 seq   16 u64 offset
 *   24 u32 length     28 u32 0             32 data    32+length  u64 xxh64(header, data)
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { xxh64Of } from '../../core/hash.ts';
import type { Logger } from '../../core/log.ts';
import { syncDirSync } from '../../core/fsutil.ts';
import { partsFrom } from '../../core/buffer-parts.ts';
import { putU64, getU64 } from '../../core/u64.ts';

const MAGIC = 0x544d4843; // "TMHC"
const VERSION = 1;
const HEADER_BYTES = 32;
const CHECKSUM_BYTES = 8;
/** A new segment is started once the current one reaches this size. */
const SEGMENT_BYTES = 64 * 1024 * 1024;

interface Segment {
  name: string;
  fd: number;
  sizeBytes: number;
  /** Highest seq with a copy here (-1 when none). */
  maxSeq: number;
  dirty: boolean;
}

interface Copy {
  seg: Segment;
  /** Where the data starts in the segment. */
  at: number;
  offset: number;
  lengthBytes: number;
}

export class HeldCopies {
  private readonly segments: Segment[] = [];
  private readonly copies = new Map<number, Copy>();
  private liveBytes = 0;
  private nextName = 0;
  private dirNeedsSync = false;

  private constructor(readonly dir: string, private readonly log: Logger) {}

  /** Opens (or creates) the store, cutting a torn tail. */
  static open(dir: string, log: Logger): HeldCopies {
    mkdirSync(dir, { recursive: true });
    const hc = new HeldCopies(dir, log);
    const names = readdirSync(dir).filter((n) => /^[0-9a-f]{16}\.held$/.test(n)).sort();
    for (const name of names) hc.load(name);
    if (names.length) hc.nextName = parseInt(names[names.length - 1].slice(0, 16), 16) + 1;
    return hc;
  }

  private load(name: string): void {
    const fd = openSync(join(this.dir, name), 'r+');
    const size = fstatSync(fd).size;
    const seg: Segment = { name, fd, sizeBytes: 0, maxSeq: -1, dirty: false };
    const head = Buffer.alloc(HEADER_BYTES);
    let at = 0;
    while (at < size) {
      const ok = (() => {
        if (readSync(fd, head, 0, HEADER_BYTES, at) !== HEADER_BYTES) return false;
        if (head.readUInt32BE(0) !== MAGIC || head.readUInt16BE(4) !== VERSION) return false;
        const length = head.readUInt32BE(24);
        if (at + HEADER_BYTES + length + CHECKSUM_BYTES > size) return false;
        const rest = Buffer.allocUnsafe(length + CHECKSUM_BYTES);
        if (readSync(fd, rest, 0, rest.length, at + HEADER_BYTES) !== rest.length) return false;
        if (!xxh64Of(head, rest.subarray(0, length)).equals(rest.subarray(length))) return false;
        const seq = getU64(head, 8);
        this.put(seq, { seg, at: at + HEADER_BYTES, offset: getU64(head, 16), lengthBytes: length });
        return true;
      })();
      if (!ok) {
        this.log.warn('held copies: cutting a torn tail', { dir: this.dir, segment: name, offsetBytes: at, sizeBytes: size });
        ftruncateSync(fd, at);
        fdatasyncSync(fd);
        break;
      }
      at += HEADER_BYTES + head.readUInt32BE(24) + CHECKSUM_BYTES;
    }
    seg.sizeBytes = at;
    this.segments.push(seg);
  }

  private put(seq: number, c: Copy): void {
    const old = this.copies.get(seq);
    if (old) this.liveBytes -= old.lengthBytes;
    this.copies.set(seq, c);
    this.liveBytes += c.lengthBytes;
    if (seq > c.seg.maxSeq) c.seg.maxSeq = seq;
  }

  /** Bytes of copies kept. */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Seqs with a copy, in no particular order. */
  seqs(): IterableIterator<number> {
    return this.copies.keys();
  }

  has(seq: number): boolean {
    return this.copies.has(seq);
  }

  /**
   * Saves the data of held write `seq` (at disk `offset`), synchronously; with `durable`,
   * fsynced (and the folder too, for a new segment) before returning.
   */
  save(seq: number, offset: number, data: Buffer, durable: boolean): void {
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.sizeBytes >= SEGMENT_BYTES) seg = this.newSegment();
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(MAGIC, 0);
    head.writeUInt16BE(VERSION, 4);
    putU64(head, 8, seq);
    putU64(head, 16, offset);
    head.writeUInt32BE(data.length, 24);
    const parts = [head, data, xxh64Of(head, data)];
    const total = HEADER_BYTES + data.length + CHECKSUM_BYTES;
    const at = seg.sizeBytes;
    try {
      let written = 0;
      while (written < total) {
        const n = writevSync(seg.fd, written ? partsFrom(parts, written) : parts, at + written);
        if (n <= 0) throw new Error(`held copy write wrote nothing at byte ${at + written}`);
        written += n;
      }
    } catch (e) {
      try {
        ftruncateSync(seg.fd, at);
      } catch {
        // The checksum still keeps a partial entry from being read back.
      }
      throw e;
    }
    seg.sizeBytes = at + total;
    seg.dirty = true;
    this.put(seq, { seg, at: at + HEADER_BYTES, offset, lengthBytes: data.length });
    if (durable) this.sync();
  }

  /** Reads the copy of `seq` into `buf` at `at`; false when there is none. */
  readInto(seq: number, buf: Buffer, at: number): boolean {
    const c = this.copies.get(seq);
    if (!c) return false;
    let got = 0;
    while (got < c.lengthBytes) {
      const n = readSync(c.seg.fd, buf, at + got, c.lengthBytes - got, c.at + got);
      if (n === 0) throw new Error(`held copy of seq ${seq} is cut short in ${c.seg.name}`);
      got += n;
    }
    return true;
  }

  /** Makes every copy saved so far durable. */
  sync(): void {
    for (const s of this.segments) {
      if (!s.dirty) continue;
      s.dirty = false;
      fdatasyncSync(s.fd);
    }
    if (this.dirNeedsSync) {
      // Rare (a new or deleted segment): a durable copy needs its file's name durable too.
      syncDirSync(this.dir);
      this.dirNeedsSync = false;
    }
  }

  /** Forgets copies below `seq` (acknowledged); deletes or empties segments left without any. */
  dropBelow(seq: number): void {
    if (this.copies.size === 0) return;
    for (const [s, c] of this.copies) {
      if (s < seq) {
        this.copies.delete(s);
        this.liveBytes -= c.lengthBytes;
      }
    }
    this.reclaim(seq);
  }

  /** Forgets copies at or above `seq` (their writes' records never reached the log). */
  dropFrom(seq: number): void {
    for (const [s, c] of this.copies) {
      if (s >= seq) {
        this.copies.delete(s);
        this.liveBytes -= c.lengthBytes;
      }
    }
  }

  clear(): void {
    this.copies.clear();
    this.liveBytes = 0;
    this.reclaim(Number.MAX_SAFE_INTEGER);
  }

  private reclaim(belowSeq: number): void {
    for (const seg of [...this.segments]) {
      if (seg.maxSeq >= belowSeq || seg.sizeBytes === 0) continue;
      if (seg === this.segments[this.segments.length - 1]) {
        ftruncateSync(seg.fd, 0);
        seg.sizeBytes = 0;
        seg.maxSeq = -1;
        continue;
      }
      this.segments.splice(this.segments.indexOf(seg), 1);
      closeSync(seg.fd);
      unlinkSync(join(this.dir, seg.name));
      this.dirNeedsSync = true;
    }
  }

  private newSegment(): Segment {
    const name = `${(this.nextName++).toString(16).padStart(16, '0')}.held`;
    const fd = openSync(join(this.dir, name), 'w+', 0o600);
    this.dirNeedsSync = true;
    const seg: Segment = { name, fd, sizeBytes: 0, maxSeq: -1, dirty: false };
    this.segments.push(seg);
    return seg;
  }

  close(): void {
    for (const s of this.segments) closeSync(s.fd);
    this.segments.length = 0;
  }
}
