/**
 * Reading a disk as it was at a recovery point, without copying anything: the replica's bytes,
 * with every byte that a later record overwrote taken from the oldest UNDO item newer than the
 * point (docs/journal-format.md, "Point-in-time reads"). Replication goes on meanwhile.
 */
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { decompress } from '../core/lz4.ts';
import type { JournalPin } from './journal.ts';
import { ITEM_CHECKSUM_BYTES, UNDO_PAYLOAD_AT, UndoEncoding } from './journal-segment.ts';
import type { ImageFile } from './replica.ts';
import type { UndoIndex, UndoPiece } from './undo-index.ts';
import type { WrittenMap } from './written-map.ts';

/** Reads at most this long use a synchronous call (cheaper than the thread pool when cached). */
const SYNC_READ_BYTES = 128 * 1024;
/** How long a read waits for a rollback to finish before it gives up. */
const ROLLBACK_WAIT_MS = 30_000;

/** What a reader needs from its stream. */
export interface PointSource {
  readonly replica: ImageFile;
  readonly index: UndoIndex;
  /**
   * Odd while an uncommitted entry is being rolled back or a compacted segment swapped in;
   * changes when either starts and ends.
   */
  readonly rollbackEpoch: number;
  /** Replica blocks that may ever have held data since the replica was created (only grows). */
  readonly written: WrittenMap;
  /** The file of the segment whose first seq is `firstSeq`. */
  segmentPath(firstSeq: number): string;
}

/** The reader was closed, or its stream was. */
export class ReaderClosedError extends Error {}

/**
 * A read-only view of one disk stream at seq `seq`. Open it with `DiskStream.openReader(seq)`;
 * it pins the journal segments it needs until `close()`.
 *
 * @example
 * const reader = stream.openReader(42);
 * try {
 *   const first = await reader.read(0, 4096);
 * } finally {
 *   await reader.close();
 * }
 */
export class PointInTimeReader {
  private readonly files = new Map<number, Promise<FileHandle>>();
  /** Files of segments replaced since they were opened, closed with the reader. */
  private retired: Array<Promise<FileHandle>> = [];
  /** The source's epoch when `files` were opened. */
  private filesEpoch: number;
  private closed = false;

  constructor(
    /** The point: the disk after records 1..seq. */
    readonly seq: number,
    /** The disk's size at the point. */
    readonly sizeBytes: number,
    private readonly source: PointSource,
    private readonly pin: JournalPin,
  ) {
    this.filesEpoch = source.rollbackEpoch;
  }

  /** `length` bytes at `offset`; the range must lie within `sizeBytes`. */
  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, offset);
    return out;
  }

  /** Fills `out` with the disk's bytes at `offset` at the point. */
  async readInto(out: Buffer, offset: number): Promise<void> {
    if (this.closed) throw new ReaderClosedError('point-in-time reader is closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + out.length > this.sizeBytes) {
      throw new RangeError(`read of ${out.length} bytes at ${offset} is outside the disk (${this.sizeBytes} bytes at seq ${this.seq})`);
    }
    const giveUpAt = Date.now() + ROLLBACK_WAIT_MS;
    for (;;) {
      const epoch = this.source.rollbackEpoch;
      if (epoch % 2 === 0) {
        // Segment files opened before a compaction swap are the old files: open them afresh.
        if (epoch !== this.filesEpoch) this.retireFiles(epoch);
        try {
          // The replica first, then the index: an apply adds its items to the index before it
          // writes the replica, so whatever the replica read saw is covered (see the format).
          await this.source.replica.readInto(out, offset);
          await this.layBack(out, offset, this.source.index.lookup(this.seq, offset, out.length));
          if (this.source.rollbackEpoch === epoch) return;
        } catch (err) {
          if (this.closed) throw new ReaderClosedError('point-in-time reader is closed', { cause: err });
          if (this.source.rollbackEpoch === epoch) throw err;
        }
      }
      if (Date.now() > giveUpAt) throw new Error(`point-in-time read at seq ${this.seq} waited too long for a rollback to finish`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /**
   * The parts of `[offset, offset + length)` that may hold non-zero bytes at the point, as
   * merged ranges in ascending order; every other byte is zero. A block never written since
   * the replica was created is zero at every point: any record that wrote it marked it first,
   * and its undo items cover it only where it was marked.
   */
  dataRanges(offset: number, length: number): Array<[start: number, end: number]> {
    const end = Math.min(offset + length, this.sizeBytes);
    return end > offset ? this.source.written.writtenRanges(offset, end - offset) : [];
  }

  private async layBack(out: Buffer, offset: number, pieces: UndoPiece[]): Promise<void> {
    let unpacked: Map<number, Buffer> | undefined;
    for (const p of pieces) {
      const at = p.start - offset;
      const n = p.end - p.start;
      const u = p.item;
      switch (u.encoding) {
        case UndoEncoding.ZERO:
          out.fill(0, at, at + n);
          break;
        case UndoEncoding.RAW:
          await this.readSegment(u.segment, out, at, n, u.at + UNDO_PAYLOAD_AT + (p.start - u.offset));
          break;
        case UndoEncoding.LZ4: {
          unpacked ??= new Map();
          let old = unpacked.get(p.id);
          if (!old) {
            const payload = Buffer.allocUnsafe(u.itemBytes - UNDO_PAYLOAD_AT - ITEM_CHECKSUM_BYTES);
            await this.readSegment(u.segment, payload, 0, payload.length, u.at + UNDO_PAYLOAD_AT);
            old = decompress(payload, u.lengthBytes);
            unpacked.set(p.id, old);
          }
          old.copy(out, at, p.start - u.offset, p.end - u.offset);
          break;
        }
        default:
          throw new Error(`undo item of seq ${u.seq} has unknown encoding ${u.encoding as number}`);
      }
    }
  }

  private async readSegment(segment: number, out: Buffer, at: number, length: number, position: number): Promise<void> {
    const fh = await this.file(segment);
    let done = 0;
    while (done < length) {
      const n =
        length - done <= SYNC_READ_BYTES
          ? readSync(fh.fd, out, at + done, length - done, position + done)
          : (await fh.read(out, at + done, length - done, position + done)).bytesRead;
      if (n === 0) throw new Error(`journal segment ${this.source.segmentPath(segment)} ends before byte ${position + length}`);
      done += n;
    }
  }

  /**
   * Forgets the open segment files (a compaction may have replaced them). They are closed with
   * the reader, not now: a concurrent read may still be using one.
   */
  private retireFiles(epoch: number): void {
    for (const f of this.files.values()) this.retired.push(f);
    this.files.clear();
    this.filesEpoch = epoch;
  }

  private file(segment: number): Promise<FileHandle> {
    let f = this.files.get(segment);
    if (!f) {
      f = open(this.source.segmentPath(segment), 'r');
      f.catch(() => this.files.delete(segment));
      this.files.set(segment, f);
    }
    return f;
  }

  /** Releases the pin and the files. Reads after this fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pin.release();
    const files = [...this.files.values(), ...this.retired];
    this.files.clear();
    this.retired = [];
    await Promise.all(files.map((f) => f.then((fh) => fh.close()).catch(() => undefined)));
  }
}
