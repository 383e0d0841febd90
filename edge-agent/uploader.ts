/**
 * Sends one stream's frames to the process server. Network faults, 5xx and "no room" answers
 * are retried with backoff until they succeed or the agent stops; a sequence conflict is
 * returned to the caller, which re-reads the position.
 */
import type { TlsIdentity } from '../core/tls/tls-identity.ts';
import { requestJson, postBinary, PeerUnreachableError } from '../core/http/client.ts';
import { TidemarkError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export class SeqConflictError extends TidemarkError {
  constructor(readonly nextSeq: number) {
    super(`process server expects seq ${nextSeq}`);
  }
}

/** A refusal that retrying cannot fix (a wrong token, a frame refused again and again). */
export class UploadRefusedError extends TidemarkError {}

export interface UploaderOptions {
  processServerUrl: string;
  token?: string;
  /** For an https:// process server: this agent's certificate and the vault CA (mutual TLS). */
  tls?: TlsIdentity;
  machine: string;
  disk: string;
  log: Logger;
  signal: AbortSignal;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

export class Uploader {
  constructor(private readonly o: UploaderOptions) {}

  private get path(): string {
    return `/v1/streams/${this.o.machine}/${this.o.disk}`;
  }

  private async retrying<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
    let wait = RETRY_MIN_MS;
    let failures = 0;
    for (;;) {
      this.o.signal.throwIfAborted();
      let problem: string;
      try {
        const v = await attempt();
        if (v !== undefined) {
          if (failures > 0) this.o.log.info(`${what}: succeeded after retrying`, { failures });
          return v;
        }
        problem = 'try again later';
      } catch (e) {
        if (e instanceof SeqConflictError || e instanceof UploadRefusedError || this.o.signal.aborted) throw e;
        problem = e instanceof PeerUnreachableError ? e.message : (e as Error).message;
      }
      failures++;
      if (failures === 1 || failures % 20 === 0) this.o.log.warn(`${what}: retrying`, { error: problem, failures });
      await sleep(wait, this.o.signal);
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  }

  /** Where the process server stands: the first seq it does not hold. */
  position(): Promise<number> {
    return this.retrying('read stream position', async () => {
      const r = await requestJson<{ nextSeq?: number; error?: string }>(this.o.processServerUrl, 'GET', this.path, undefined, { token: this.o.token, tls: this.o.tls, signal: this.o.signal });
      if (r.status === 401) {
        throw new UploadRefusedError('the process server refused our token (401)', { hint: 'give the agent the same TIDEMARK_TOKEN (or --token) as the process server' });
      }
      if (r.status !== 200 || !Number.isSafeInteger(r.body.nextSeq)) throw new Error(`process server answered ${r.status}: ${r.body.error ?? ''}`);
      return r.body.nextSeq!;
    });
  }

  /** Sends one frame; resolves with the process server's new position once it is durable there. */
  send(frame: Buffer, firstSeq: number): Promise<number> {
    let badFrames = 0;
    return this.retrying(`send batch at seq ${firstSeq}`, async () => {
      const r = await postBinary<{ nextSeq?: number; error?: string }>(this.o.processServerUrl, `${this.path}/batches`, frame, {
        token: this.o.token, tls: this.o.tls, signal: this.o.signal, timeoutMs: 120_000,
      });
      if (r.status === 200) return r.body.nextSeq!;
      if (r.status === 409) throw new SeqConflictError(r.body.nextSeq!);
      if (r.status === 401) {
        throw new UploadRefusedError('the process server refused our token (401)', { hint: 'give the agent the same TIDEMARK_TOKEN (or --token) as the process server' });
      }
      if (r.status === 400 && ++badFrames > 5) throw new UploadRefusedError(`process server keeps refusing batch ${firstSeq}: ${r.body.error}`);
      throw new Error(`process server answered ${r.status}: ${r.body.error ?? ''}`);
    });
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(t);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
