/**
 * Building the disk image at a point: a copy of the replica with the undo records newer than
 * the point laid back, newest first (docs/journal-format.md, "Point-in-time image"). The apply
 * lock is held only while the replica is copied.
 */
import { randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskStream } from './disk-stream.ts';
import { scanSegment, type ItemLocation } from './journal-scan.ts';
import { decodeUndo, ItemReader, readSegmentHeader, undoBytes, type Begin } from './journal-segment.ts';
import { ImageFile } from './replica.ts';

export interface ExportedImage {
  /** A temporary file in the data directory; the caller deletes it. */
  path: string;
  /** The seq the image stands at. */
  seq: number;
  sizeBytes: number;
}

/** Writes the image of `stream` at `seq` to a new file in `tmpDir`. */
export async function buildImage(stream: DiskStream, seq: number, tmpDir: string): Promise<ExportedImage> {
  const path = join(tmpDir, `export-${randomUUID()}.img`);
  try {
    const snap = await stream.snapshot(seq, path);
    try {
      const image = await ImageFile.open(path);
      try {
        const sizeBytes = await layBack(image, snap.pin.segments, seq, snap.appliedSeq, snap.diskBytes);
        if (image.sizeBytes !== sizeBytes) await image.resize(sizeBytes);
        return { path, seq, sizeBytes };
      } finally {
        await image.close();
      }
    } finally {
      snap.pin.release();
    }
  } catch (err) {
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

interface EntryUndo {
  begin: Begin;
  undo: ItemLocation[];
}

/**
 * Lays back, newest first, the undo items with seq > `seq` of the committed entries up to
 * `appliedSeq`. Returns the disk size at `seq`.
 */
async function layBack(
  image: ImageFile,
  segments: Array<{ path: string; firstSeq: number; committedBytes: number }>,
  seq: number,
  appliedSeq: number,
  diskBytes: number,
): Promise<number> {
  let sizeBytes = diskBytes;
  for (let s = segments.length - 1; s >= 0; s--) {
    const seg = segments[s];
    if (seg.firstSeq > appliedSeq) continue;
    const fh = await open(seg.path, 'r');
    try {
      const header = await readSegmentHeader(fh, seg.path);
      const entries = await entriesAfter(fh, header.headerBytes, seg.committedBytes, seg.firstSeq, seq, appliedSeq);
      for (let e = entries.length - 1; e >= 0; e--) {
        const { begin, undo } = entries[e];
        for (let i = undo.length - 1; i >= 0; i--) {
          const loc = undo[i];
          const item = await new ItemReader(fh, loc.at, loc.at + loc.itemBytes).next();
          const u = decodeUndo(item!.body);
          if (u.seq <= seq) continue;
          const old = undoBytes(u);
          if (old) await image.write(u.offset, old);
          else await image.zero(u.offset, u.lengthBytes);
        }
        sizeBytes = begin.firstSeq > seq ? begin.prevDiskBytes : begin.diskBytes;
      }
    } finally {
      await fh.close();
    }
  }
  return sizeBytes;
}

/** The committed entries of a segment that hold seqs after `seq` and start at or before `appliedSeq`. */
async function entriesAfter(fh: FileHandle, start: number, end: number, firstSeq: number, seq: number, appliedSeq: number): Promise<EntryUndo[]> {
  const out: EntryUndo[] = [];
  const scan = await scanSegment(fh, start, end, firstSeq, (begin, _tags, undo) => {
    if (begin.lastSeq > seq && begin.firstSeq <= appliedSeq) out.push({ begin, undo });
  });
  if (scan.stoppedBy || scan.open) throw scan.stoppedBy ?? new Error(`journal segment ends inside an entry before byte ${end}`);
  return out;
}
