/**
 * Fast non-cryptographic hashes from `hash-wasm` (xxh64 for frame checksums, xxh128 for
 * block hashes). WebAssembly modules load asynchronously once; after `loadHashing()` every
 * call is synchronous, which keeps the hot paths free of promises.
 */
import { createXXHash64, createXXHash128, type IHasher } from 'hash-wasm';

let xxh64: IHasher | undefined;
let xxh128: IHasher | undefined;

/** Loads the hash modules; call once at startup before any other function here. */
export async function loadHashing(): Promise<void> {
  if (!xxh64) xxh64 = await createXXHash64();
  if (!xxh128) xxh128 = await createXXHash128();
}

function ready(h: IHasher | undefined): IHasher {
  if (!h) throw new Error('hashing not loaded: call loadHashing() first');
  return h;
}

/** xxh64 (seed 0) of the given parts, as an 8-byte big-endian buffer. */
export function xxh64Of(...parts: Uint8Array[]): Buffer {
  const h = ready(xxh64);
  h.init();
  for (const p of parts) h.update(p);
  return Buffer.from(h.digest('binary'));
}

/** Length of a block hash in bytes. */
export const BLOCK_HASH_BYTES = 16;

/** xxh128 of one block, written into `out` at `outOffset` (16 bytes). */
export function blockHashInto(block: Uint8Array, out: Buffer, outOffset: number): void {
  const h = ready(xxh128);
  h.init();
  h.update(block);
  out.set(h.digest('binary'), outOffset);
}

/** xxh128 of one block as a new 16-byte buffer. */
export function blockHash(block: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(BLOCK_HASH_BYTES);
  blockHashInto(block, out, 0);
  return out;
}
