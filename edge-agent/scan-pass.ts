/**
 * One pass over a disk in scan mode: hash every 64 KiB block, send those that differ from the
 * manifest, and (except during the initial sync) end with a recovery-point tag. Reading and
 * hashing run on the scan threads (scan-threads.ts); this builds batches from their units in
 * disk order. Sending overlaps reading: one batch is in flight while the next is being built.
 * Batches go uncompressed: compression is the process server's work (DESIGN.md), unless the
 * agent is told to compress for a thin link to it.
 */
import { encodeFrame, FrameFlag, RecordType, type BatchRecord, type PointKind } from '../core/wire/frame.ts';
import type { Manifest } from './manifest.ts';
import type { DiskSource } from './disk-source.ts';
import type { Uploader } from './uploader.ts';
import { BlockKind, blockBytes, BLOCK_BYTES } from './scan-unit.ts';
import { scanUnits, type ScanThreads } from './scan-threads.ts';
import { BLOCK_HASH_BYTES } from '../core/hash.ts';

/** Raw bytes gathered before a batch is sent. */
export const BATCH_RAW_BYTES = 8 * 1024 * 1024;
/** Room for a batch's frame: its raw bytes, one block over, record headers and tags. */
const FRAME_BUFFER_BYTES = BATCH_RAW_BYTES + 1024 * 1024;

export type PassKind = 'initial' | 'rescan' | 'resync';

export interface PassOptions {
  kind: PassKind;
  machine: string;
  disk: string;
  src: DiskSource;
  manifest: Manifest;
  uploader: Uploader;
  threads: ScanThreads;
  /** LZ4 the batches where it pays (for a thin link to the process server). */
  compress?: boolean;
  /** First seq the pass may use. */
  nextSeq: number;
  /** First block to read (the initial sync's resume cursor). */
  startBlock: number;
  /** Zero blocks not yet known to the manifest are skipped: the replica reads zeros there. */
  skipZeroBlocks: boolean;
  /** The tags that end the pass (a scan's point, bookmarks); none for the initial sync. */
  tags?: Array<{ kind: PointKind; name?: string }>;
  /** Called once all blocks are read, before the last batch is acknowledged (thaw early). */
  onReadDone?: () => Promise<void>;
  /** Called after each acknowledged batch. */
  onAck?: (ack: { nextSeq: number; cursorBlock: number }) => Promise<void>;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal: AbortSignal;
}

export interface PassResult {
  nextSeq: number;
  changedBlocks: number;
  sentBytes: number;
  /** Seq of the pass's point (its last tag). */
  pointSeq?: number;
  /** Seq of each tag, in the order given. */
  tagSeqs: number[];
}

interface Pending {
  records: BatchRecord[];
  updates: Array<{ block: number; hash: Buffer }>;
  rawBytes: number;
  /** Scan-thread slots to release once this batch is encoded (its records may point into them). */
  release: number[];
}

const newPending = (): Pending => ({ records: [], updates: [], rawBytes: 0, release: [] });

export async function scanPass(o: PassOptions): Promise<PassResult> {
  const size = o.src.sizeBytes;
  const blocks = o.manifest.blockCount;
  const flags = o.kind === 'initial' ? FrameFlag.INITIAL_SYNC : o.kind === 'resync' ? FrameFlag.RESYNC : 0;
  let nextSeq = o.nextSeq;
  let changedBlocks = 0;
  let sentBytes = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let batch = newPending();
  // Two frame buffers take turns: a frame is encoded only once the one before the last is acknowledged.
  const frameBuffers = [Buffer.allocUnsafeSlow(FRAME_BUFFER_BYTES), Buffer.allocUnsafeSlow(FRAME_BUFFER_BYTES)];
  let frameTurn = 0;

  const send = async (p: Pending, cursorBlock: number) => {
    if (p.records.length === 0) {
      // Only skipped (zero) blocks: nothing to send, but the manifest and cursor may move on.
      for (const slot of p.release) o.threads.release(slot);
      await inFlight;
      await o.manifest.commit(p.updates);
      await o.onAck?.({ nextSeq, cursorBlock });
      return;
    }
    const firstSeq = nextSeq;
    const frame = encodeFrame({ machine: o.machine, disk: o.disk, firstSeq, timeMs: Date.now(), diskBytes: size, flags, records: p.records, compress: o.compress ?? false }, frameBuffers[frameTurn++ % 2]);
    for (const slot of p.release) o.threads.release(slot);
    nextSeq += p.records.length;
    sentBytes += frame.length;
    const previous = inFlight;
    inFlight = (async () => {
      await previous;
      const ackNext = await o.uploader.send(frame, firstSeq);
      await o.manifest.commit(p.updates);
      await o.onAck?.({ nextSeq: ackNext, cursorBlock });
    })();
    inFlight.catch(() => undefined); // the error surfaces where inFlight is awaited
    // Keep at most one batch in flight: wait for the one before this.
    await previous;
  };

  const units = scanUnits({
    threads: o.threads, path: o.src.path, sizeBytes: size, blockCount: blocks, startBlock: o.startBlock,
    known: (first, count) => o.manifest.entries(first, count), skipZeroBlocks: o.skipZeroBlocks,
  });
  try {
    for await (const u of units) {
      o.signal.throwIfAborted();
      const data = Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength);
      const hashes = Buffer.from(u.hashes.buffer, u.hashes.byteOffset, u.hashes.byteLength);
      for (let i = 0; i < u.count; i++) {
        const kind = u.kinds[i];
        if (kind === BlockKind.UNCHANGED) continue;
        const block = u.firstBlock + i;
        const hash = hashes.subarray(i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES);
        batch.updates.push({ block, hash });
        // A new replica reads as zeros already.
        if (kind === BlockKind.SKIPPED_ZERO) continue;
        const len = blockBytes(block, size);
        changedBlocks++;
        batch.records.push(kind === BlockKind.ZERO
          ? { type: RecordType.ZERO, offset: block * BLOCK_BYTES, lengthBytes: len }
          : { type: RecordType.WRITE, offset: block * BLOCK_BYTES, data: data.subarray(u.dataAt[i], u.dataAt[i] + len) });
        batch.rawBytes += kind === BlockKind.ZERO ? 0 : len;
        if (batch.rawBytes >= BATCH_RAW_BYTES || batch.records.length >= 4096) {
          await send(batch, block + 1);
          batch = newPending();
        }
      }
      // The batch being built holds this unit's last records, if any: it releases the slot.
      if (u.inSlot) batch.release.push(u.slotIndex);
      o.onProgress?.(Math.min(size, (u.firstBlock + u.count) * BLOCK_BYTES), size);
    }
  } catch (e) {
    for (const slot of batch.release) o.threads.release(slot);
    throw e;
  }
  o.onProgress?.(size, size);
  await o.onReadDone?.();
  const tagSeqs: number[] = [];
  const timeMs = Date.now();
  for (const tag of o.tags ?? []) {
    tagSeqs.push(nextSeq + batch.records.length);
    batch.records.push({ type: RecordType.TAG, tag: { kind: tag.kind, timeMs, ...(tag.name ? { name: tag.name } : {}) } });
  }
  await send(batch, blocks);
  await inFlight;
  return { nextSeq, changedBlocks, sentBytes, pointSeq: tagSeqs[tagSeqs.length - 1], tagSeqs };
}
