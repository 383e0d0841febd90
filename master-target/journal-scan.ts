/**
 * Reading a segment back: checks the item grammar (BEGIN, TAG*, UNDO*, RESULT?, COMMIT, ...) and finds
 * where the valid, committed log ends and whether an uncommitted entry follows it.
 */
import type { FileHandle } from 'node:fs/promises';
import {
  decodeBegin,
  decodeCommit,
  decodeResult,
  decodeTag,
  decodeUndo,
  ItemReader,
  ItemType,
  JournalFormatError,
  type Begin,
  type ResultRange,
  type StoredPoint,
  type UndoEncoding,
} from './journal-segment.ts';

/** Where an item lies in its segment file. */
export interface ItemLocation {
  at: number;
  itemBytes: number;
}

/** An UNDO item: where it lies, and what it covers. */
export interface UndoLocation extends ItemLocation {
  seq: number;
  offset: number;
  lengthBytes: number;
  encoding: UndoEncoding;
}

/** An entry that has a BEGIN but no COMMIT. */
export interface OpenEntry {
  beginAt: number;
  begin: Begin;
  tags: Array<{ seq: number; point: StoredPoint }>;
  undo: UndoLocation[];
  /** Its RESULT item, when that was written (then every UNDO item before it is there too). */
  result?: ResultRange[];
  /** End of its last valid item. */
  endBytes: number;
}

export interface ScanResult {
  /** End of the last COMMIT item (or of the header): the committed length of the segment. */
  committedBytes: number;
  /** Last committed seq (firstSeq − 1 when the segment holds no entry). */
  lastSeq: number;
  /** Frame time of the newest committed entry, if any. */
  newestTimeMs?: number;
  /** Diskbytes after the newest committed entry, if any. */
  diskBytes?: number;
  /** An entry after the committed log that never got its COMMIT. */
  open?: OpenEntry;
  /** Why the scan stopped before the end of the file, if it did. */
  stoppedBy?: Error;
}

/** Sees one committed entry: its BEGIN, its tags, and where its UNDO items lie. */
export type EntryVisitor = (begin: Begin, tags: Array<{ seq: number; point: StoredPoint }>, undo: UndoLocation[]) => void;

/** Scans items from `start` to `end`, calling `onEntry` for each committed entry. */
export async function scanSegment(fh: FileHandle, start: number, end: number, firstSeq: number, onEntry: EntryVisitor): Promise<ScanResult> {
  const reader = new ItemReader(fh, start, end);
  const result: ScanResult = { committedBytes: start, lastSeq: firstSeq - 1 };
  let open: OpenEntry | undefined;
  let tags: Array<{ seq: number; point: StoredPoint }> = [];
  try {
    for (;;) {
      const item = await reader.next();
      if (!item) break;
      if (!open) {
        if (item.type !== ItemType.BEGIN) throw new JournalFormatError(`journal item at ${item.at}: expected BEGIN, found type ${item.type}`);
        const begin = decodeBegin(item.body);
        if (begin.firstSeq !== result.lastSeq + 1 || begin.lastSeq < begin.firstSeq) {
          throw new JournalFormatError(`journal entry at ${item.at} covers seq ${begin.firstSeq}..${begin.lastSeq}, expected to start at ${result.lastSeq + 1}`);
        }
        tags = [];
        open = { beginAt: item.at, begin, tags, undo: [], endBytes: reader.position };
        continue;
      }
      if (open.result && item.type !== ItemType.COMMIT) throw new JournalFormatError(`journal item at ${item.at}: only COMMIT may follow RESULT`);
      const { firstSeq: lo, lastSeq: hi } = open.begin;
      switch (item.type) {
        case ItemType.TAG: {
          const t = decodeTag(item.body);
          if (t.seq < lo || t.seq > hi) throw new JournalFormatError(`journal TAG at ${item.at} is outside its entry`);
          tags.push(t);
          break;
        }
        case ItemType.UNDO: {
          const u = decodeUndo(item.body);
          if (u.seq < lo || u.seq > hi) throw new JournalFormatError(`journal UNDO at ${item.at} is outside its entry`);
          open.undo.push(undoLocation(item.at, item.itemBytes, u));
          break;
        }
        case ItemType.RESULT:
          open.result = decodeResult(item.body);
          break;
        case ItemType.COMMIT: {
          const c = decodeCommit(item.body);
          if (c.lastSeq !== hi) throw new JournalFormatError(`journal COMMIT at ${item.at} names seq ${c.lastSeq}, its entry ends at ${hi}`);
          onEntry(open.begin, tags, open.undo);
          result.committedBytes = reader.position;
          result.lastSeq = hi;
          result.newestTimeMs = open.begin.timeMs;
          result.diskBytes = open.begin.diskBytes;
          open = undefined;
          break;
        }
        default:
          throw new JournalFormatError(`journal item at ${item.at}: unexpected BEGIN inside an entry`);
      }
      if (open) open.endBytes = reader.position;
    }
  } catch (err) {
    if (!(err instanceof JournalFormatError || err instanceof SyntaxError)) throw err;
    result.stoppedBy = err;
  }
  if (open) result.open = open;
  return result;
}

/** Scans one entry starting at `beginAt`, ignoring any COMMIT: what a rollback needs. */
export async function scanOpenEntry(fh: FileHandle, beginAt: number, end: number): Promise<OpenEntry | undefined> {
  const reader = new ItemReader(fh, beginAt, end);
  let open: OpenEntry | undefined;
  try {
    for (;;) {
      const item = await reader.next();
      if (!item) break;
      if (!open) {
        if (item.type !== ItemType.BEGIN) return undefined;
        open = { beginAt, begin: decodeBegin(item.body), tags: [], undo: [], endBytes: reader.position };
        continue;
      } else if (item.type === ItemType.UNDO) open.undo.push(undoLocation(item.at, item.itemBytes, decodeUndo(item.body)));
      else if (item.type === ItemType.RESULT) open.result = decodeResult(item.body);
      else if (item.type === ItemType.TAG) open.tags.push(decodeTag(item.body));
      else break;
      open.endBytes = reader.position;
    }
  } catch (err) {
    if (!(err instanceof JournalFormatError)) throw err;
  }
  return open;
}

function undoLocation(at: number, itemBytes: number, u: { seq: number; offset: number; lengthBytes: number; encoding: UndoEncoding }): UndoLocation {
  return { at, itemBytes, seq: u.seq, offset: u.offset, lengthBytes: u.lengthBytes, encoding: u.encoding };
}
