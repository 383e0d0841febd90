/**
 * Scan-mode protection of one disk: the initial sync (resumable from its cursor), then a
 * rescan every interval, each ending in a recovery point. Sequence numbers come from the
 * process server's position, so a restart never reuses one that reached it.
 */
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/log.ts';
import { openDisk, type DiskSource } from './disk-source.ts';
import { Manifest } from './manifest.ts';
import { loadDiskState, newDiskState, saveDiskState, type DiskState } from './disk-state.ts';
import { Uploader, SeqConflictError, sleep } from './uploader.ts';
import { scanPass, type PassKind, type PassResult } from './scan-pass.ts';
import type { ScanThreads } from './scan-threads.ts';
import { freeze, type FreezeHooks } from './hooks.ts';
import { fetchReplicaHashes, HASH_WINDOW_BLOCKS } from './replica-hashes.ts';
import { BLOCK_HASH_BYTES } from '../core/hash.ts';

export type DiskPhase = 'INITIAL_SYNC' | 'CONTINUOUS' | 'RESYNC';

/** How long a resync waits for the process server to drain its backlog before sending every block instead. */
const SEED_WAIT_MS = 5 * 60_000;

export interface DiskAgentOptions {
  machine: string;
  disk: string;
  path: string;
  stateDir: string;
  processServerUrl: string;
  token?: string;
  /** For an https:// process server: this agent's certificate and the vault CA (mutual TLS). */
  tls?: TlsIdentity;
  intervalSeconds: number;
  hooks: FreezeHooks;
  /** The threads that read and hash (shared by the agent's disks). */
  threads: ScanThreads;
  /** LZ4 batches where it pays (for a thin link to the process server). */
  compress?: boolean;
  log: Logger;
  signal: AbortSignal;
  /** Progress and pass results, for the CLI's live output. */
  onEvent?: (e: DiskEvent) => void;
}

export type DiskEvent =
  | { type: 'progress'; disk: string; phase: DiskPhase; doneBytes: number; totalBytes: number }
  | { type: 'pass'; disk: string; kind: PassKind; result: PassResult; seconds: number; consistent: boolean };

export class DiskAgent {
  phase: DiskPhase = 'INITIAL_SYNC';
  doneBytes = 0;
  totalBytes = 0;
  private state!: DiskState;
  private manifest!: Manifest;
  private src!: DiskSource;
  private readonly dir: string;
  private readonly uploader: Uploader;
  private readonly log: Logger;
  private bookmarks: Array<{ name: string; resolve: (seq: number) => void; reject: (e: Error) => void }> = [];
  private wake: (() => void) | undefined;

  constructor(private readonly o: DiskAgentOptions) {
    this.dir = join(o.stateDir, o.disk);
    this.log = o.log.child({ disk: o.disk });
    this.uploader = new Uploader({ processServerUrl: o.processServerUrl, token: o.token, tls: o.tls, machine: o.machine, disk: o.disk, log: this.log, signal: o.signal });
  }

  /** Runs until the signal aborts. */
  async run(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.src = await openDisk(this.o.path);
    this.totalBytes = this.src.sizeBytes;
    try {
      await this.prepare();
      for (;;) {
        try {
          await this.cycle();
        } catch (e) {
          if (this.o.signal.aborted) throw e;
          if (!(e instanceof SeqConflictError)) throw e;
          this.log.warn('stream position moved under us; re-reading it', { nextSeq: e.nextSeq });
          await this.adoptPosition();
        }
      }
    } finally {
      await this.src.fh.close().catch(() => undefined);
      await this.manifest?.close().catch(() => undefined);
    }
  }

  private async prepare(): Promise<void> {
    const saved = await loadDiskState(this.dir);
    const { manifest, fresh } = await Manifest.open(join(this.dir, 'manifest.bin'), this.src.sizeBytes);
    this.manifest = manifest;
    if (saved && saved.diskBytes === this.src.sizeBytes && !fresh) {
      this.state = { ...saved, path: this.o.path };
      if (saved.path !== this.o.path) this.log.warn('disk path changed since the last run; continuing with the same stream', { was: saved.path, now: this.o.path });
    } else {
      if (saved) this.log.warn('disk size changed or manifest unreadable: starting a new initial sync', { wasBytes: saved.diskBytes, nowBytes: this.src.sizeBytes });
      this.state = { ...newDiskState(this.o.path, this.src.sizeBytes), nextSeq: saved?.nextSeq ?? 1 };
      if (saved) this.state.initialSync.sendZeros = true;
    }
    await this.adoptPosition();
    await saveDiskState(this.dir, this.state);
  }

  /** Takes the process server's position; if it is behind what was acknowledged, resync. */
  private async adoptPosition(): Promise<void> {
    const ps = await this.uploader.position();
    const fresh = this.state.nextSeq === 1 && !this.state.initialSync.done && this.state.initialSync.cursorBlock === 0;
    if (ps < this.state.nextSeq) {
      this.log.error('the process server has lost acknowledged data; the disk will be resynchronised', { acknowledgedThrough: this.state.nextSeq - 1, serverNextSeq: ps });
      await this.manifest.reset(this.src.sizeBytes);
      this.state.initialSync = { done: false, cursorBlock: 0, sendZeros: true, resync: this.state.initialSync.done || this.state.initialSync.resync };
      await this.seedFromReplica(ps);
    } else if (fresh && ps > 1) {
      this.log.warn('the replica already holds data for this disk; comparing block hashes with it', { serverNextSeq: ps });
      this.state.initialSync.sendZeros = true;
      await this.seedFromReplica(ps);
    }
    this.state.nextSeq = ps;
  }

  /**
   * Fills the manifest with the replica's own block hashes, taken at exactly the state the
   * next record (`nextSeq`) applies to, so the coming pass sends only the blocks that differ.
   * Anything less certain (another state, another size, no answer in time) leaves the manifest
   * empty and every block is sent.
   */
  private async seedFromReplica(nextSeq: number): Promise<boolean> {
    const blocks = this.manifest.blockCount;
    const all = Buffer.alloc(blocks * BLOCK_HASH_BYTES);
    const peer = { processServerUrl: this.o.processServerUrl, token: this.o.token, machine: this.o.machine, disk: this.o.disk, signal: this.o.signal };
    const giveUpAt = Date.now() + SEED_WAIT_MS;
    let waitMs = 250;
    for (let first = 0; first < blocks;) {
      const want = Math.min(HASH_WINDOW_BLOCKS, blocks - first);
      const f = await fetchReplicaHashes(peer, first, want);
      if (f.kind === 'wait') {
        if (Date.now() > giveUpAt) return this.seedFailed(`no block hashes within ${SEED_WAIT_MS / 1000} s (${f.why})`);
        await sleep(waitMs, this.o.signal);
        waitMs = Math.min(waitMs * 2, 5_000);
        continue;
      }
      if (f.kind === 'none') return this.seedFailed(f.why);
      if (f.seq !== nextSeq - 1) return this.seedFailed(`the replica is at seq ${f.seq}, the stream continues at ${nextSeq}`);
      if (f.diskBytes !== this.src.sizeBytes || f.count !== want) return this.seedFailed(`the replica is ${f.diskBytes} bytes, the disk ${this.src.sizeBytes}`);
      f.hashes.copy(all, first * BLOCK_HASH_BYTES);
      first += want;
    }
    await this.manifest.adopt(all);
    this.log.info('block hashes taken from the replica: only blocks that differ will be sent', { blocks, atSeq: nextSeq - 1 });
    return true;
  }

  private seedFailed(why: string): false {
    this.log.warn('cannot compare with the replica; every block will be sent', { why });
    return false;
  }

  private async cycle(): Promise<void> {
    if (!this.state.initialSync.done) {
      this.phase = this.state.initialSync.resync ? 'RESYNC' : 'INITIAL_SYNC';
      await this.pass(this.state.initialSync.resync ? 'resync' : 'initial');
      this.state.initialSync = { done: true, cursorBlock: 0 };
      await saveDiskState(this.dir, this.state);
      this.log.info(`${this.phase === 'RESYNC' ? 'resync' : 'initial sync'} complete`, { diskBytes: this.src.sizeBytes });
    }
    this.phase = 'CONTINUOUS';
    await this.pass('rescan');
    await this.idle(this.o.intervalSeconds * 1000);
  }

  /** Waits for the next scan, or less if a bookmark is asked for. */
  private async idle(ms: number): Promise<void> {
    if (this.bookmarks.length) return;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      sleep(ms, this.o.signal).then(resolve, resolve);
    });
    this.wake = undefined;
    this.o.signal.throwIfAborted();
  }

  /**
   * Asks for a bookmark: the next scan starts now and ends with a named point as well as its
   * own. Resolves with the bookmark's seq.
   */
  bookmark(name: string): Promise<number> {
    if (!this.state?.initialSync.done) return Promise.reject(new Error(`${this.o.disk} is still in its initial sync: no consistent point to bookmark yet`));
    return new Promise((resolve, reject) => {
      this.bookmarks.push({ name, resolve, reject });
      this.wake?.();
    });
  }

  private async pass(kind: PassKind): Promise<void> {
    const started = Date.now();
    const env = { TIDEMARK_MACHINE: this.o.machine, TIDEMARK_DISK: this.o.disk, TIDEMARK_DISK_PATH: this.o.path };
    const full = kind !== 'rescan';
    const tagged = !full;
    const { frozen, thaw } = tagged ? await freeze(this.o.hooks, env, this.log) : { frozen: false, thaw: async () => undefined };
    const asked = tagged ? this.bookmarks.splice(0) : [];
    let result: PassResult;
    try {
      result = await scanPass({
        kind,
        machine: this.o.machine,
        disk: this.o.disk,
        src: this.src,
        manifest: this.manifest,
        uploader: this.uploader,
        threads: this.o.threads,
        compress: this.o.compress,
        nextSeq: this.state.nextSeq,
        startBlock: full ? this.state.initialSync.cursorBlock : 0,
        skipZeroBlocks: full && !this.state.initialSync.sendZeros,
        tags: tagged ? [{ kind: frozen ? 'app' : 'crash' }, ...asked.map((b) => ({ kind: 'bookmark' as const, name: b.name }))] : undefined,
        onReadDone: thaw,
        onAck: async ({ nextSeq, cursorBlock }) => {
          this.state.nextSeq = nextSeq;
          if (full) this.state.initialSync.cursorBlock = cursorBlock;
          await saveDiskState(this.dir, this.state);
        },
        onProgress: (done, total) => {
          this.doneBytes = done;
          this.o.onEvent?.({ type: 'progress', disk: this.o.disk, phase: this.phase, doneBytes: done, totalBytes: total });
        },
        signal: this.o.signal,
      });
    } catch (e) {
      for (const b of asked) b.reject(e as Error);
      throw e;
    } finally {
      await thaw();
    }
    asked.forEach((b, i) => b.resolve(result.tagSeqs[i + 1]));
    this.state.nextSeq = result.nextSeq;
    if (result.pointSeq !== undefined) this.state.lastPointSeq = result.pointSeq;
    this.state.lastScanTime = new Date().toISOString();
    await saveDiskState(this.dir, this.state);
    const seconds = (Date.now() - started) / 1000;
    this.log.info('scan complete', { kind, changedBlocks: result.changedBlocks, sentBytes: result.sentBytes, pointSeq: result.pointSeq, seconds });
    this.o.onEvent?.({ type: 'pass', disk: this.o.disk, kind, result, seconds, consistent: frozen });
  }
}

