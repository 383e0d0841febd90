/**
 * A sample disk image with a realistic mix: a boot area, text, random (incompressible) data,
 * repeated blocks and long runs of zeros (left sparse). Deterministic for a given seed.
 */
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';

import { seededRandom } from '../../core/seeded-random.ts';

export { seededRandom };

export function randomBuffer(rand: () => number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  return b;
}

const WORDS = 'the quick replica journal point block disk write flush sequence recovery site failover drill tide mark of server data'.split(' ');

export function textBuffer(rand: () => number, bytes: number): Buffer {
  let s = '';
  while (s.length < bytes) s += WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.1 ? '\n' : ' ');
  return Buffer.from(s.slice(0, bytes));
}

/** Writes the sample image: the first quarter holds data of mixed kinds, the rest is zeros. */
export async function makeSampleDisk(path: string, sizeBytes: number, seed = 1): Promise<void> {
  const rand = seededRandom(seed);
  const fh = await open(path, 'w');
  try {
    await fh.truncate(sizeBytes);
    const chunk = 1024 * 1024;
    const dataBytes = Math.floor(sizeBytes / 4 / chunk) * chunk;
    const repeated = textBuffer(rand, chunk);
    for (let at = 0; at < dataBytes; at += chunk) {
      const kind = Math.floor(rand() * 4);
      const buf = kind === 0 ? randomBuffer(rand, chunk) : kind === 1 ? textBuffer(rand, chunk) : kind === 2 ? repeated : Buffer.alloc(chunk);
      if (kind !== 3) await fh.write(buf, 0, chunk, at);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** sha256 of a whole file, read in 4 MiB pieces. */
export async function sha256File(path: string): Promise<string> {
  const fh = await open(path, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
  try {
    for (let at = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** Overwrites `blocks` random 64 KiB blocks with random data (some with zeros), then fsyncs. */
export async function writeRandomBlocks(path: string, sizeBytes: number, blocks: number, rand: () => number): Promise<void> {
  const fh = await open(path, 'r+');
  const block = 64 * 1024;
  try {
    for (let i = 0; i < blocks; i++) {
      const at = Math.floor(rand() * Math.floor(sizeBytes / block)) * block;
      // Unaligned, partial writes too: scan mode must catch any change within a block.
      const len = rand() < 0.3 ? 1 + Math.floor(rand() * block) : block;
      const data = rand() < 0.1 ? Buffer.alloc(len) : randomBuffer(rand, Math.ceil(len / 4) * 4).subarray(0, len);
      await fh.write(data, 0, len, at + Math.floor(rand() * (block - len + 1)));
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}
