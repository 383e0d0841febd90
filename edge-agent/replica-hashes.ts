/**
 * The agent's client for the replica's block hashes, asked of the process server
 * (docs/wire-format.md, "Block hashes"): what lets a resync send only the blocks that differ.
 */
import { requestJson } from '../core/http/client.ts';
import { BLOCK_HASH_BYTES } from '../core/hash.ts';

/** Blocks per request: the most the protocol allows (256 MiB of disk). */
export const HASH_WINDOW_BLOCKS = 4096;

export interface ReplicaHashesPeer {
  processServerUrl: string;
  token?: string;
  machine: string;
  disk: string;
  signal: AbortSignal;
}

export type ReplicaHashes =
  /** `hashes` holds `count` xxh128 digests of blocks `first`.., the replica's state after record `seq`. */
  | { kind: 'hashes'; seq: number; diskBytes: number; first: number; count: number; hashes: Buffer }
  /** Nothing to compare with: no replica of this disk, or a peer without the endpoint. */
  | { kind: 'none'; why: string }
  /** Not now (a backlog still shipping, a peer unreachable): ask again later. */
  | { kind: 'wait'; why: string };

export async function fetchReplicaHashes(peer: ReplicaHashesPeer, first: number, count: number): Promise<ReplicaHashes> {
  const path = `/v1/streams/${peer.machine}/${peer.disk}/block-hashes?first=${first}&count=${count}`;
  let r;
  try {
    r = await requestJson<{ version?: number; seq?: number; diskBytes?: number; first?: number; count?: number; blockBytes?: number; hashes?: string; error?: string }>(
      peer.processServerUrl, 'GET', path, undefined, { token: peer.token, signal: peer.signal, timeoutMs: 150_000 },
    );
  } catch (e) {
    if (peer.signal.aborted) throw e;
    return { kind: 'wait', why: (e as Error).message };
  }
  const b = r.body;
  if (r.status === 200) {
    const hashes = Buffer.from(b.hashes ?? '', 'base64');
    if (b.version !== 1 || b.blockBytes !== 64 * 1024 || !Number.isSafeInteger(b.seq) || !Number.isSafeInteger(b.diskBytes) || b.first !== first
      || !Number.isSafeInteger(b.count) || hashes.length !== b.count! * BLOCK_HASH_BYTES) {
      return { kind: 'none', why: `unexpected block-hash answer (version ${b.version})` };
    }
    return { kind: 'hashes', seq: b.seq!, diskBytes: b.diskBytes!, first, count: b.count!, hashes };
  }
  if (r.status === 404) return { kind: 'none', why: b.error ?? 'not found' };
  return { kind: 'wait', why: `process server answered ${r.status}: ${b.error ?? ''}` };
}
