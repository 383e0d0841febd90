/**
 * One disk stream at the process server: accepts the agent's frames in order into the spool
 * and ships them, in order, to the master target, resuming from wherever the master target
 * says it stands.
 */
import { decodeRecords, readFrameHeader, verifyFrame, type FrameHeader } from '../core/wire/frame.ts';
import { mergeFrames, mergeable } from '../core/wire/merge.ts';
import { postBinary, getJson, PeerUnreachableError, type PeerResponse } from '../core/http/client.ts';
import type { Logger } from '../core/log.ts';
import { StreamSpool } from './spool.ts';
import { loadStreamState, saveStreamState } from './stream-state.ts';
import { Mutex } from '../core/mutex.ts';
import { Wakeable } from '../core/wakeable.ts';
import { FRAME_VERSION_PIECES } from '../core/wire/frame.ts';
import type { ShipAnswer, WanLink } from './wan/wan-link.ts';
import { optimiseBatch, type SpooledBatch } from './wan/optimise.ts';
import { frameBuffers } from './frame-buffers.ts';
import type { TlsIdentity } from '../core/tls/tls-identity.ts';

export interface MasterTargetLink {
  url: string;
  token?: string;
  /** Shared WAN shipping (turns, bandwidth, references, spool budget); without it batches go as spooled. */
  wan?: WanLink;
  /** For an https:// master target: this process server's certificate and the vault CA. */
  tls?: TlsIdentity;
}

/** What the agent last said about this disk. */
export interface AgentReport {
  phase: 'INITIAL_SYNC' | 'CONTINUOUS' | 'RESYNC';
  doneBytes?: number;
  totalBytes?: number;
  intervalSeconds?: number;
}

export type AcceptResult =
  | { status: 200; nextSeq: number; duplicate?: boolean }
  | { status: 409; nextSeq: number }
  | { status: 507; error: string };

/** Shipped batches merge spooled frames up to this size and count. */
const SHIP_BATCH_BYTES = 8 * 1024 * 1024;
const SHIP_BATCH_FRAMES = 1024;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;

export class Stream {
  /** First seq the master target does not hold (undefined until known). */
  appliedNextSeq: number | undefined;
  lastContactMs = 0;
  lastAppliedTimeMs = 0;
  agent: AgentReport | undefined;
  /** Why shipping is failing right now, if it is. */
  shipError: string | undefined;
  shipErrorSinceMs = 0;
  private readonly acceptLock = new Mutex();
  private readonly waker = new Wakeable();
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** The master target reads version 2 frames (references and pieces). */
  private masterTargetPieces = false;
  /** stream.json exists (it may lag behind while frames are pending: see stream-state.ts). */
  private stateSaved = false;

  private constructor(
    readonly machine: string,
    readonly disk: string,
    readonly dir: string,
    readonly spool: StreamSpool,
    readonly mt: MasterTargetLink,
    private readonly log: Logger,
  ) {}

  static async open(machine: string, disk: string, dir: string, mt: MasterTargetLink, log: Logger): Promise<Stream> {
    const l = log.child({ machine, disk });
    const spool = await StreamSpool.open(dir, l);
    const s = new Stream(machine, disk, dir, spool, mt, l);
    s.appliedNextSeq = (await loadStreamState(dir))?.appliedNextSeq;
    s.stateSaved = s.appliedNextSeq !== undefined;
    return s;
  }

  /** The first seq this process server does not hold; asks the master target when it cannot know. */
  async acceptNextSeq(): Promise<number> {
    if (this.appliedNextSeq === undefined) await this.refreshFromMasterTarget();
    return Math.max(this.spool.nextSeq ?? 0, this.appliedNextSeq!);
  }

  private async refreshFromMasterTarget(): Promise<void> {
    const pos = await getJson<{ nextSeq: number; wireVersions?: unknown }>(this.mt.url, `/v1/streams/${this.machine}/${this.disk}`, { token: this.mt.token, tls: this.mt.tls, timeoutMs: 10_000 });
    if (!Number.isSafeInteger(pos.nextSeq) || pos.nextSeq < 1) throw new Error(`master target gave an invalid position ${pos.nextSeq}`);
    this.appliedNextSeq = pos.nextSeq;
    this.masterTargetPieces = Array.isArray(pos.wireVersions) && pos.wireVersions.includes(FRAME_VERSION_PIECES);
    await this.saveState(pos.nextSeq);
  }

  private async saveState(appliedNextSeq: number): Promise<void> {
    await saveStreamState(this.dir, { version: 1, appliedNextSeq });
    this.stateSaved = true;
  }

  /** Takes one verified frame from the agent. Answers only once it is durable. */
  async accept(frame: Buffer, header: FrameHeader, maxSpoolBytes: number): Promise<AcceptResult> {
    return this.acceptLock.run(async () => {
      this.lastContactMs = Date.now();
      const next = await this.acceptNextSeq();
      if (header.lastSeq < next) return { status: 200, nextSeq: next, duplicate: true };
      if (header.firstSeq !== next) return { status: 409, nextSeq: next };
      if (this.spool.bytes + frame.length > maxSpoolBytes) {
        return { status: 507, error: `spool full: ${this.spool.bytes} of ${maxSpoolBytes} bytes pending for ${this.machine}/${this.disk}` };
      }
      const budget = this.mt.wan?.budget;
      const refused = budget?.reserve(frame.length, this.spool.bytes, this.mt.wan!.activeStreams(this));
      if (refused) return { status: 507, error: refused };
      try {
        await this.spool.append(frame, header);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return { status: 507, error: 'spool disk is full' };
        throw e;
      } finally {
        budget?.release(frame.length);
      }
      if (this.mt.wan) {
        this.mt.wan.totals.receivedBytes += frame.length;
        this.mt.wan.totals.receivedBatches++;
      }
      this.waker.wake();
      return { status: 200, nextSeq: header.lastSeq + 1 };
    });
  }

  /** Starts the shipping loop. */
  start(): void {
    this.loop ??= this.shipLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waker.wake();
    await this.loop;
    await this.spool.close();
  }

  private setError(msg: string | undefined): void {
    if (msg && !this.shipError) this.shipErrorSinceMs = Date.now();
    if (msg !== this.shipError) {
      if (msg) this.log.warn('shipping interrupted', { error: msg });
      else this.log.info('shipping resumed');
    }
    this.shipError = msg;
  }

  private async shipLoop(): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    let positionKnown = false;
    while (!this.stopped) {
      if (this.spool.pendingCount === 0) {
        await this.waker.sleep(1000);
        continue;
      }
      try {
        if (!positionKnown) {
          await this.refreshFromMasterTarget();
          positionKnown = true;
          await this.spool.dropThrough(this.appliedNextSeq! - 1);
          continue;
        }
        await this.shipOne();
        this.setError(undefined);
        retryMs = RETRY_MIN_MS;
      } catch (e) {
        this.setError(e instanceof PeerUnreachableError ? e.message : (e as Error).message);
        positionKnown = false;
        await this.waker.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Sends a batch as spooled (merged, nothing re-encoded): without a WAN link. */
  private async postPlain(batch: SpooledBatch): Promise<PeerResponse<ShipAnswer>> {
    const o = optimiseBatch(batch, { optimise: false, pieces: false, pool: frameBuffers });
    try {
      return await postBinary<ShipAnswer>(this.mt.url, `/v1/streams/${this.machine}/${this.disk}/batches`, o.frame, { token: this.mt.token, tls: this.mt.tls, timeoutMs: 120_000 });
    } finally {
      frameBuffers.release(o.frame);
    }
  }

  private async shipOne(): Promise<void> {
    const want = this.appliedNextSeq!;
    const entry = this.spool.from(want).next().value;
    if (!entry) {
      await this.spool.dropThrough(want - 1);
      return;
    }
    if (entry.firstSeq > want) {
      throw new Error(`master target needs seq ${want} but the spool starts at ${entry.firstSeq}: the disk needs a resync`);
    }
    // Small frames (a tap disk's few writes each) go on merged: each batch costs the master
    // target a round of fsyncs, so fewer, larger batches keep its apply rate up.
    const entries = [entry];
    let bytes = entry.bytes;
    const batchBytes = this.mt.wan?.batchBytes() ?? SHIP_BATCH_BYTES;
    for (const e of this.spool.from(entry.lastSeq + 1)) {
      if (e.flags !== entry.flags || bytes + e.bytes > batchBytes || entries.length >= SHIP_BATCH_FRAMES) break;
      entries.push(e);
      bytes += e.bytes;
    }
    // Frames still kept as they arrived were verified then; frames read back are checked
    // again as they leave the spool. The batch is encoded from views of them.
    const arrived = this.spool.arrivedFrames(entries);
    const buf = arrived ? undefined : frameBuffers.acquire(bytes);
    let r: PeerResponse<ShipAnswer>;
    let header: FrameHeader;
    try {
      const frames = arrived ?? (await this.spool.readInto(entries, buf!));
      const headers = frames.map((f) => readFrameHeader(f));
      let n = 1;
      while (n < frames.length && mergeable(headers[n - 1], headers[n])) n++;
      const batch: SpooledBatch = { frames: frames.slice(0, n).map((f, i) => { const h = arrived ? headers[i] : verifyFrame(f); return { header: h, records: decodeRecords(f, h) }; }), fromSeq: want };
      header = { ...headers[n - 1], firstSeq: want };
      r = this.mt.wan
        ? await this.mt.wan.ship(this.mt, this.machine, this.disk, batch, this.masterTargetPieces)
        : await this.postPlain(batch);
    } finally {
      if (buf) frameBuffers.release(buf);
    }
    if (r.status === 200 || r.status === 409) {
      const next = r.body.nextSeq;
      if (!Number.isSafeInteger(next)) throw new Error(`master target answered ${r.status} without a position`);
      // While a frame stays pending, the newest segment stays and says where the stream stands
      // after a restart; only a drop that leaves nothing pending must record the position first
      // (and the first one, so that a restart finds a position without the master target).
      if (!this.stateSaved || next! >= (this.spool.nextSeq ?? 0)) await this.saveState(next!);
      this.appliedNextSeq = next!;
      if (r.status === 200) this.lastAppliedTimeMs = header.timeMs;
      await this.spool.dropThrough(next! - 1);
      this.mt.wan?.budget.check();
      return;
    }
    throw new Error(`master target refused batch ${header.firstSeq}..${header.lastSeq}: ${r.status} ${r.body.error ?? ''}`.trim());
  }
}

/** A frame without its records below `fromSeq` (the receiver already has them). */
export function trimFrame(frame: Buffer, fromSeq: number): Buffer {
  return mergeFrames([frame], fromSeq);
}
