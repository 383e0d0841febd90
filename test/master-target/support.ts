/**
 * Test support: a seeded random batch generator and a reference disk that applies records
 * the obvious way, so that images can be compared with it by hash.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, FrameFlag, RecordType, type BatchInput, type BatchRecord, type PointKind } from '../../core/wire/frame.ts';

import { seededRandom } from '../../core/seeded-random.ts';

/** A small deterministic PRNG (mulberry32). */
export const rng = seededRandom;

export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export interface GenOptions {
  seed: number;
  batches: number;
  /** Disk size of the first batches; later batches may grow it to `growToBytes`. */
  diskBytes: number;
  growToBytes?: number;
  maxRecords: number;
  maxWriteBytes: number;
  machine?: string;
  disk?: string;
  startMs?: number;
  stepMs?: number;
}

/** Deterministic batches: overlapping writes (also within a batch), zero, trim, tags, ORDERED frames. */
export function generateBatches(o: GenOptions): BatchInput[] {
  const r = rng(o.seed);
  const out: BatchInput[] = [];
  let seq = 1;
  let timeMs = o.startMs ?? Date.UTC(2030, 0, 1);
  for (let b = 0; b < o.batches; b++) {
    const diskBytes = o.growToBytes && b >= o.batches / 2 ? o.growToBytes : o.diskBytes;
    const n = int(r, 1, o.maxRecords);
    const records: BatchRecord[] = [];
    const offsets: number[] = [];
    timeMs += o.stepMs ?? 1000;
    for (let i = 0; i < n; i++) {
      const kind = r();
      const len = int(r, 1, o.maxWriteBytes);
      // Often reuse an offset from this batch so that records overlap each other.
      let offset = offsets.length && r() < 0.35 ? offsets[int(r, 0, offsets.length - 1)] + int(r, -4096, 4096) : int(r, 0, diskBytes - 1);
      offset = Math.max(0, Math.min(offset, diskBytes - len));
      if (kind < 0.6) {
        const data = Buffer.alloc(len, int(r, 1, 255));
        if (r() < 0.5) for (let k = 0; k + 4 <= len; k += 4) data.writeUInt32LE((r() * 2 ** 32) >>> 0, k);
        records.push({ type: RecordType.WRITE, offset, data });
      } else if (kind < 0.75) records.push({ type: RecordType.ZERO, offset, lengthBytes: len });
      else if (kind < 0.85) records.push({ type: RecordType.TRIM, offset, lengthBytes: len });
      else {
        const kinds: PointKind[] = ['crash', 'app', 'group', 'bookmark'];
        records.push({ type: RecordType.TAG, tag: { kind: kinds[int(r, 0, 3)], timeMs: timeMs - 1, name: `p${seq + i}` } });
        continue;
      }
      offsets.push(offset);
    }
    out.push({
      machine: o.machine ?? 'm1',
      disk: o.disk ?? 'disk0',
      firstSeq: seq,
      timeMs,
      diskBytes,
      flags: r() < 0.3 ? FrameFlag.ORDERED : 0,
      records,
    });
    seq += n;
  }
  return out;
}

export function frames(batches: BatchInput[]): Buffer[] {
  return batches.map((b) => encodeFrame(b));
}

/** The source disk, modelled in memory. */
export class ReferenceDisk {
  buf: Buffer;
  sizeBytes = 0;
  seq = 0;

  constructor(maxBytes: number) {
    this.buf = Buffer.alloc(maxBytes);
  }

  /** Applies records of `batch` up to and including `uptoSeq`. */
  apply(batch: BatchInput, uptoSeq = Number.POSITIVE_INFINITY): void {
    this.sizeBytes = Math.max(this.sizeBytes, batch.diskBytes);
    batch.records.forEach((rec, i) => {
      const seq = batch.firstSeq + i;
      if (seq > uptoSeq) return;
      if (rec.type === RecordType.WRITE) rec.data.copy(this.buf, rec.offset);
      else if (rec.type === RecordType.ZERO || rec.type === RecordType.TRIM) this.buf.fill(0, rec.offset, rec.offset + rec.lengthBytes);
      this.seq = seq;
    });
  }

  hash(): string {
    return sha256(this.buf.subarray(0, this.sizeBytes));
  }
}

/** sha256 of the disk after records 1..seq of `batches`. */
export function referenceHash(batches: BatchInput[], seq: number, maxBytes: number): string {
  const ref = new ReferenceDisk(maxBytes);
  for (const b of batches) {
    if (b.firstSeq > seq) break;
    ref.apply(b, seq);
  }
  return ref.hash();
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `tidemark-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The batches of the crash test (shared by the test and its child process). */
export function crashBatches(seed: number): BatchInput[] {
  return generateBatches({ seed, batches: 80, diskBytes: 8 * 1024 * 1024, maxRecords: 12, maxWriteBytes: 512 * 1024 });
}

/** Hash of the reference disk after every seq of `batches` (index = seq). */
export function hashesBySeq(batches: BatchInput[], maxBytes: number): string[] {
  const ref = new ReferenceDisk(maxBytes);
  const out = [sha256(Buffer.alloc(0))];
  for (const b of batches) {
    for (let i = 0; i < b.records.length; i++) {
      ref.apply({ ...b, records: b.records.map((r, k) => (k <= i ? r : { type: RecordType.TAG, tag: { kind: 'crash', timeMs: 0 } })) }, b.firstSeq + i);
      out.push(ref.hash());
    }
  }
  return out;
}

/** Segment size of the compaction tests (shared with their child process). */
export const COMPACT_SEGMENT_BYTES = 1024 * 1024;

/** The compaction tests' history: a batch every 10 s for 70 minutes, ending at `endMs`, on a 512 KiB disk. */
export function compactionBatches(seed: number, endMs: number): BatchInput[] {
  const stepMs = 10_000;
  const batches = 420;
  return generateBatches({ seed, batches, diskBytes: 512 * 1024, maxRecords: 6, maxWriteBytes: 64 * 1024, startMs: endMs - batches * stepMs, stepMs });
}
