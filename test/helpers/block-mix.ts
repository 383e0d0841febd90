/**
 * A seeded, realistic mix of changed 64 KiB blocks for WAN tests and the WAN benchmark: zero
 * blocks, random (incompressible) blocks, text, and blocks repeated from a shared pool (the
 * same OS and application files on many machines, files copied within a disk).
 */
import { seededRandom } from '../../core/seeded-random.ts';

export const MIX_BLOCK_BYTES = 64 * 1024;

export interface MixShares {
  zero: number;
  random: number;
  text: number;
  repeated: number;
}

/** Shares of a changed-block stream on a typical server (sum 1). */
export const DEFAULT_MIX: MixShares = { zero: 0.15, random: 0.3, text: 0.3, repeated: 0.25 };

const WORDS = ('the of and to in is was for on that with as by at from this be are have an or which not but all log info error warn request user id time ' +
  'server replication disk block write read config value true false null select insert update where order group limit ' +
  'GET POST HTTP/1.1 200 404 500 /var/lib /usr/share index.html application/json').split(' ');

/** A block of log- or config-like text (compresses roughly 3:1 with LZ4). */
export function textBlock(r: () => number, bytes = MIX_BLOCK_BYTES): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  while (at < bytes) {
    const line = `${new Date(1_800_000_000_000 + Math.floor(r() * 1e9)).toISOString()} ${Array.from({ length: 4 + Math.floor(r() * 12) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ')} ${Math.floor(r() * 1e6)}\n`;
    at += out.write(line, at, 'latin1');
  }
  return out;
}

export function randomBlock(r: () => number, bytes = MIX_BLOCK_BYTES): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) out.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return out;
}

/** Blocks every machine shares (an OS image): half text, half binary. */
export function sharedPool(seed: number, blocks: number): Buffer[] {
  const r = seededRandom(seed);
  return Array.from({ length: blocks }, (_, i) => (i % 2 ? textBlock(r) : randomBlock(r)));
}

/** `count` changed blocks of the mix for one machine; `pool` blocks recur across machines. */
export function mixedBlocks(seed: number, count: number, pool: Buffer[], mix: MixShares = DEFAULT_MIX): Buffer[] {
  const r = seededRandom(seed);
  const zero = Buffer.alloc(MIX_BLOCK_BYTES);
  return Array.from({ length: count }, () => {
    const x = r();
    if (x < mix.zero) return zero;
    if (x < mix.zero + mix.random) return randomBlock(r);
    if (x < mix.zero + mix.random + mix.text) return textBlock(r);
    return pool[Math.floor(r() * pool.length)];
  });
}
