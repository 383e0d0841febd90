/**
 * One pass over a disk in scan mode: hash every 64 KiB block, send those that differ from the
 * manifest, and (except during the initial sync) end with a recovery-point tag. Sending
 * overlaps reading: one batch is in flight while the next is being built.
 *
 * Reads are small and synchronous on purpose: a 512 KiB chunk is still in the CPU cache when it
 * is hashed, which makes read + hash of a cached 1 GiB disk about twice as fast as 4 MiB
 * reads through the thread pool; the kernel's readahead keeps a cold sequential read flowing.
 * The loop yields to the event loop every few MiB so the upload in flight keeps moving.
 */
import { blockHash } from '../core/hash.ts';
import { encodeFrame, FrameFlag, RecordType, type BatchRecord, type PointKind } from '../core/wire/frame.ts';
import { BLOCK_BYTES, type Manifest } from './manifest.ts';
import { readAtSync, type DiskSource } from './disk-source.ts';
import type { Uploader } from './uploader.ts';

/** Raw bytes gathered before a batch is sent. */
export const BATCH_RAW_BYTES = 8 * 1024 * 1024;
/** Blocks per read: small enough to stay in the CPU cache until hashed. */
const READ_BLOCKS = 8;
/** Reads between two turns of the event loop (16 MiB). */
const READS_PER_YIELD = 32;
const ZERO_BLOCK = Buffer.alloc(BLOCK_BYTES);

export type PassKind = 'initial' | 'rescan' | 'resync';

export interface PassOptions {
  kind: PassKind;
  machine: string;
  disk: string;
  src: DiskSource;
  manifest: Manifest;
  uploader: Uploader;
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
}

export async function scanPass(o: PassOptions): Promise<PassResult> {
  const size = o.src.sizeBytes;
  const blocks = o.manifest.blockCount;
  const flags = o.kind === 'initial' ? FrameFlag.INITIAL_SYNC : o.kind === 'resync' ? FrameFlag.RESYNC : 0;
  const buf = Buffer.alloc(READ_BLOCKS * BLOCK_BYTES);
  const readChunk = (first: number): void => {
    const offset = first * BLOCK_BYTES;
    const want = Math.min(Math.min(READ_BLOCKS, blocks - first) * BLOCK_BYTES, size - offset);
    const got = readAtSync(o.src, buf, want, offset);
    if (got < want) buf.fill(0, got, want);
  };
  let nextSeq = o.nextSeq;
  let changedBlocks = 0;
  let sentBytes = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let batch: Pending = { records: [], updates: [], rawBytes: 0 };

  const send = async (p: Pending, cursorBlock: number) => {
    if (p.records.length === 0) {
      // Only skipped (zero) blocks: nothing to send, but the manifest and cursor may move on.
      await inFlight;
      await o.manifest.commit(p.updates);
      await o.onAck?.({ nextSeq, cursorBlock });
      return;
    }
    const firstSeq = nextSeq;
    const frame = encodeFrame({ machine: o.machine, disk: o.disk, firstSeq, timeMs: Date.now(), diskBytes: size, flags, records: p.records });
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

  for (let first = o.startBlock, reads = 0; first < blocks; first += READ_BLOCKS, reads++) {
    o.signal.throwIfAborted();
    if (reads % READS_PER_YIELD === READS_PER_YIELD - 1) await yieldToEventLoop();
    const count = Math.min(READ_BLOCKS, blocks - first);
    readChunk(first);
    for (let i = 0; i < count; i++) {
      const block = first + i;
      const len = Math.min(BLOCK_BYTES, size - block * BLOCK_BYTES);
      const data = buf.subarray(i * BLOCK_BYTES, i * BLOCK_BYTES + len);
      const hash = blockHash(data);
      if (o.manifest.matches(block, hash)) continue;
      const zero = data.equals(len === BLOCK_BYTES ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, len));
      if (zero && o.skipZeroBlocks && o.manifest.isUnknown(block)) {
        // A new replica reads as zeros already.
        batch.updates.push({ block, hash });
        continue;
      }
      changedBlocks++;
      batch.records.push(zero
        ? { type: RecordType.ZERO, offset: block * BLOCK_BYTES, lengthBytes: len }
        : { type: RecordType.WRITE, offset: block * BLOCK_BYTES, data: Buffer.from(data) });
      batch.updates.push({ block, hash });
      batch.rawBytes += zero ? 0 : len;
      if (batch.rawBytes >= BATCH_RAW_BYTES || batch.records.length >= 4096) {
        await send(batch, block + 1);
        batch = { records: [], updates: [], rawBytes: 0 };
      }
    }
    if (reads % READS_PER_YIELD === 0) o.onProgress?.(Math.min(size, (first + count) * BLOCK_BYTES), size);
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

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
