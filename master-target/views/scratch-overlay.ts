/**
 * The copy-on-write scratch overlay of a writable view (docs/views.md): the view's writes go
 * to a sparse scratch file, one 64 KiB slot per written block, found through an in-memory map;
 * every other byte comes from the point-in-time reader underneath. A partial write of a block
 * not yet in the overlay first copies the block from the reader (read-modify-write). Blocks
 * written whole with zeros take no scratch space. The overlay is bounded: a write that needs a
 * slot beyond `maxBytes` fails with ENOSPC. Nothing of it survives `close()`.
 */
import { constants } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Mutex } from '../../core/mutex.ts';
import { NbdError, NbdErrno } from '../../core/nbd/index.ts';
import type { PointInTimeReader } from '../point-reader.ts';

/** Granularity of the overlay: a written block takes one slot of this size in the scratch file. */
export const OVERLAY_BLOCK_BYTES = 64 * 1024;

/** The map value of a block written whole with zeros: no slot. */
const ZERO_BLOCK = -1;

/** What the overlay reads from when a block is not in it. */
export type BaseReader = Pick<PointInTimeReader, 'sizeBytes' | 'readInto'>;

export class ScratchOverlay {
  /** Block index → slot in the scratch file, or ZERO_BLOCK. */
  private readonly blocks = new Map<number, number>();
  private slots = 0;
  /** Writes are serialised: two writes touching one new block must not both copy it. */
  private readonly lock = new Mutex();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly base: BaseReader,
    readonly maxBytes: number,
  ) {}

  /** Creates the (empty, sparse) scratch file at `path`, which must not exist. */
  static async create(path: string, base: BaseReader, maxBytes: number): Promise<ScratchOverlay> {
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
    return new ScratchOverlay(path, fh, base, maxBytes);
  }

  get sizeBytes(): number {
    return this.base.sizeBytes;
  }

  /** Scratch space the overlay holds. */
  get usedBytes(): number {
    return this.slots * OVERLAY_BLOCK_BYTES;
  }

  /** Blocks that differ from the point (written at least once). */
  get writtenBlocks(): number {
    return this.blocks.size;
  }

  /** Fills `out` with the view's bytes at `offset`: overlay blocks from the scratch file, runs of others from the base. */
  async readInto(out: Buffer, offset: number): Promise<void> {
    if (this.blocks.size === 0) return this.base.readInto(out, offset);
    const end = offset + out.length;
    let at = offset;
    let runStart = offset;
    const pending: Array<Promise<void>> = [];
    const flushRun = (upTo: number) => {
      if (upTo > runStart) pending.push(this.base.readInto(out.subarray(runStart - offset, upTo - offset), runStart));
    };
    while (at < end) {
      const block = Math.floor(at / OVERLAY_BLOCK_BYTES);
      const blockEnd = Math.min(end, (block + 1) * OVERLAY_BLOCK_BYTES);
      const slot = this.blocks.get(block);
      if (slot !== undefined) {
        flushRun(at);
        const target = out.subarray(at - offset, blockEnd - offset);
        if (slot === ZERO_BLOCK) target.fill(0);
        else pending.push(readFully(this.fh, target, slot * OVERLAY_BLOCK_BYTES + (at - block * OVERLAY_BLOCK_BYTES)));
        runStart = blockEnd;
      }
      at = blockEnd;
    }
    flushRun(end);
    await Promise.all(pending);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, offset);
    return out;
  }

  /** Writes `data` at `offset` into the overlay. */
  write(offset: number, data: Buffer): Promise<void> {
    return this.lock.run(() => this.apply(offset, data.length, data));
  }

  /** Makes `[offset, offset + length)` read as zeros. */
  zero(offset: number, length: number): Promise<void> {
    return this.lock.run(() => this.apply(offset, length, undefined));
  }

  /** `data` undefined means zeros. */
  private async apply(offset: number, length: number, data: Buffer | undefined): Promise<void> {
    const end = offset + length;
    for (let at = offset; at < end; ) {
      const block = Math.floor(at / OVERLAY_BLOCK_BYTES);
      const blockStart = block * OVERLAY_BLOCK_BYTES;
      const blockEnd = Math.min(end, blockStart + OVERLAY_BLOCK_BYTES);
      const piece = data?.subarray(at - offset, blockEnd - offset);
      const whole = at === blockStart && (blockEnd === blockStart + OVERLAY_BLOCK_BYTES || blockEnd === this.sizeBytes);
      let slot = this.blocks.get(block);
      if (!piece && whole) {
        // A whole block of zeros needs no slot (its old slot, if any, stays allocated unused).
        this.blocks.set(block, ZERO_BLOCK);
      } else if (slot !== undefined && slot !== ZERO_BLOCK) {
        await writeFully(this.fh, piece ?? Buffer.alloc(blockEnd - at), slot * OVERLAY_BLOCK_BYTES + (at - blockStart));
      } else {
        // A new slot: the block as the view shows it now, with this piece laid over it.
        slot = this.allocate();
        const blockBytes = Math.min(OVERLAY_BLOCK_BYTES, this.sizeBytes - blockStart);
        const buf = Buffer.alloc(blockBytes);
        if (!whole && this.blocks.get(block) !== ZERO_BLOCK) await this.base.readInto(buf, blockStart);
        if (piece) piece.copy(buf, at - blockStart);
        else buf.fill(0, at - blockStart, blockEnd - blockStart);
        await writeFully(this.fh, buf, slot * OVERLAY_BLOCK_BYTES);
        this.blocks.set(block, slot);
      }
      at = blockEnd;
    }
  }

  private allocate(): number {
    if ((this.slots + 1) * OVERLAY_BLOCK_BYTES > this.maxBytes) {
      throw new NbdError(NbdErrno.ENOSPC, `view scratch space is full (${this.maxBytes} bytes)`, {
        hint: 'start the master target with a larger --scratch-bytes, or write less in the drill',
      });
    }
    return this.slots++;
  }

  /** Closes and deletes the scratch file: every write to the view is gone. */
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
    this.blocks.clear();
    this.slots = 0;
  }
}

async function readFully(fh: FileHandle, out: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < out.length) {
    const { bytesRead } = await fh.read(out, done, out.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  if (done < out.length) out.fill(0, done);
}

async function writeFully(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    done += (await fh.write(data, done, data.length - done, position + done)).bytesWritten;
  }
}
