/**
 * The durable spool of one stream: frames exactly as the agent sent them, appended to
 * segment files and fsynced before the agent is answered. Frames leave the spool only after
 * the master target acknowledged them. Layout and recovery rules: docs/spool-format.md.
 */
import { open, readdir, unlink, mkdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { readFrameHeader, verifyFrame, FRAME_HEADER_BYTES, type FrameHeader } from '../core/wire/frame.ts';
import { syncDir } from '../core/fsutil.ts';
import type { Logger } from '../core/log.ts';

/** A segment is closed and a new one started once it reaches this size. */
export const SPOOL_SEGMENT_BYTES = 64 * 1024 * 1024;
const SEGMENT_NAME = /^([0-9a-f]{16})\.spool$/;

interface Segment {
  name: string;
  fh: FileHandle;
  sizeBytes: number;
  /** Entries of this segment still pending. */
  live: number;
}

export interface SpoolEntry {
  firstSeq: number;
  lastSeq: number;
  timeMs: number;
  flags: number;
  bytes: number;
  segment: Segment;
  offset: number;
}

export class SpoolDamagedError extends Error {}

export class StreamSpool {
  private readonly entries: SpoolEntry[] = [];
  private readonly segments: Segment[] = [];
  private pendingBytes = 0;

  private constructor(readonly dir: string, private readonly log: Logger) {}

  /** Opens (or creates) a stream's spool, checking every frame and cutting a torn tail. */
  static async open(dir: string, log: Logger): Promise<StreamSpool> {
    await mkdir(dir, { recursive: true });
    const spool = new StreamSpool(dir, log);
    const names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
    for (let i = 0; i < names.length; i++) {
      const ok = await spool.load(names[i], i === names.length - 1);
      if (!ok) {
        // Later segments cannot be trusted to continue the stream: keep what is contiguous.
        for (const rest of names.slice(i + 1)) {
          log.error('spool segment dropped after damage', { segment: rest });
          await unlink(join(dir, rest));
        }
        break;
      }
    }
    return spool;
  }

  private async load(name: string, isLast: boolean): Promise<boolean> {
    const path = join(this.dir, name);
    const fh = await open(path, 'r+');
    const size = (await fh.stat()).size;
    const seg: Segment = { name, fh, sizeBytes: 0, live: 0 };
    let at = 0;
    let intact = true;
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    while (at < size) {
      let header: FrameHeader;
      try {
        const { bytesRead } = await fh.read(head, 0, FRAME_HEADER_BYTES, at);
        const h = readFrameHeader(head.subarray(0, bytesRead));
        if (at + h.totalBytes > size) throw new Error('frame runs past the end of the segment');
        const frame = Buffer.alloc(h.totalBytes);
        await fh.read(frame, 0, h.totalBytes, at);
        header = verifyFrame(frame);
        const expected = this.nextSeq;
        if (expected !== undefined && header.firstSeq !== expected) throw new Error(`frame starts at seq ${header.firstSeq}, expected ${expected}`);
      } catch (e) {
        intact = false;
        const msg = { segment: name, offsetBytes: at, sizeBytes: size, error: (e as Error).message };
        if (isLast) this.log.warn('spool: cutting a torn tail (a write that was never acknowledged)', msg);
        else this.log.error('spool: damaged segment; frames after this point are lost and the agent will resync', msg);
        await fh.truncate(at);
        await fh.sync();
        break;
      }
      this.entries.push({ firstSeq: header.firstSeq, lastSeq: header.lastSeq, timeMs: header.timeMs, flags: header.flags, bytes: header.totalBytes, segment: seg, offset: at });
      seg.live++;
      this.pendingBytes += header.totalBytes;
      at += header.totalBytes;
    }
    seg.sizeBytes = at;
    this.segments.push(seg);
    if (seg.live === 0 && !isLast) await this.removeSegment(seg);
    return intact || isLast;
  }

  /** Seq after the newest spooled frame, or undefined when the spool is empty. */
  get nextSeq(): number | undefined {
    const last = this.entries[this.entries.length - 1];
    return last ? last.lastSeq + 1 : undefined;
  }

  /** Bytes of frames not yet acknowledged downstream. */
  get bytes(): number {
    return this.pendingBytes;
  }

  /** Pending entries, oldest first. */
  pending(): readonly SpoolEntry[] {
    return this.entries;
  }

  /** Appends a verified frame and makes it durable before returning. */
  async append(frame: Buffer, header: FrameHeader): Promise<void> {
    let seg = this.segments[this.segments.length - 1];
    if (!seg || seg.sizeBytes >= SPOOL_SEGMENT_BYTES) seg = await this.newSegment(header.firstSeq);
    const at = seg.sizeBytes;
    try {
      let written = 0;
      while (written < frame.length) {
        const { bytesWritten } = await seg.fh.write(frame, written, frame.length - written, at + written);
        written += bytesWritten;
      }
      await seg.fh.datasync();
    } catch (e) {
      // Leave no partial frame behind (a full disk, an I/O error): the agent will re-send.
      await seg.fh.truncate(at).catch(() => undefined);
      throw e;
    }
    seg.sizeBytes = at + frame.length;
    seg.live++;
    this.pendingBytes += frame.length;
    this.entries.push({ firstSeq: header.firstSeq, lastSeq: header.lastSeq, timeMs: header.timeMs, flags: header.flags, bytes: frame.length, segment: seg, offset: at });
  }

  private async newSegment(firstSeq: number): Promise<Segment> {
    const name = `${firstSeq.toString(16).padStart(16, '0')}.spool`;
    const fh = await open(join(this.dir, name), 'w+', 0o600);
    await syncDir(this.dir);
    const seg: Segment = { name, fh, sizeBytes: 0, live: 0 };
    this.segments.push(seg);
    return seg;
  }

  /** Reads one pending frame back. */
  async read(entry: SpoolEntry): Promise<Buffer> {
    const buf = Buffer.alloc(entry.bytes);
    const { bytesRead } = await entry.segment.fh.read(buf, 0, entry.bytes, entry.offset);
    if (bytesRead !== entry.bytes) throw new SpoolDamagedError(`spool segment ${entry.segment.name} is shorter than expected`);
    return buf;
  }

  /** Forgets every frame whose last seq is at or below `seq`; deletes segments left empty. */
  async dropThrough(seq: number): Promise<void> {
    while (this.entries.length && this.entries[0].lastSeq <= seq) {
      const e = this.entries.shift()!;
      this.pendingBytes -= e.bytes;
      e.segment.live--;
    }
    for (const seg of [...this.segments]) {
      if (seg.live > 0) break;
      await this.removeSegment(seg);
    }
  }

  private async removeSegment(seg: Segment): Promise<void> {
    await seg.fh.close();
    await unlink(join(this.dir, seg.name));
    this.segments.splice(this.segments.indexOf(seg), 1);
    await syncDir(this.dir);
  }

  async close(): Promise<void> {
    for (const s of this.segments) await s.fh.close().catch(() => undefined);
  }

  /** Bytes the spool occupies on disk (for tests and status). */
  async diskBytes(): Promise<number> {
    let n = 0;
    for (const s of this.segments) n += (await stat(join(this.dir, s.name))).size;
    return n;
  }
}
