/**
 * The scan threads: every block of a disk judged against the manifest exactly as a plain
 * single-threaded read and hash would, in disk order, with the changed bytes intact.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockHash, loadHashing, BLOCK_HASH_BYTES } from '../../core/hash.ts';
import { seededRandom } from '../../core/seeded-random.ts';
import { BlockKind, BLOCK_BYTES, UNIT_BLOCKS } from '../../edge-agent/scan-unit.ts';
import { ScanThreads, scanUnits } from '../../edge-agent/scan-threads.ts';

const dir = await mkdtemp(join(tmpdir(), 'tm-scan-units-'));
after(() => rm(dir, { recursive: true, force: true }));
await loadHashing();

/** Three whole units and a bit, ending in a short block. */
const SIZE = (3 * UNIT_BLOCKS + 5) * BLOCK_BYTES + 12_345;
const BLOCKS = Math.ceil(SIZE / BLOCK_BYTES);
const rand = seededRandom(7);
const image = Buffer.alloc(SIZE);
for (let b = 0; b < BLOCKS; b++) {
  if (b % 5 === 0) continue; // every fifth block stays zero
  const at = b * BLOCK_BYTES;
  for (let i = at; i < Math.min(SIZE, at + BLOCK_BYTES); i++) image[i] = Math.floor(rand() * 256);
}
const path = join(dir, 'disk.img');
await writeFile(path, image);
const blockOf = (b: number) => image.subarray(b * BLOCK_BYTES, Math.min(SIZE, (b + 1) * BLOCK_BYTES));

/** A manifest that knows some blocks right, some wrong, the rest not at all. */
const known = Buffer.alloc(BLOCKS * BLOCK_HASH_BYTES);
const state = (b: number) => (b % 3 === 0 ? 'right' : b % 3 === 1 ? 'unknown' : 'wrong');
for (let b = 0; b < BLOCKS; b++) {
  if (state(b) === 'right') blockHash(blockOf(b)).copy(known, b * BLOCK_HASH_BYTES);
  if (state(b) === 'wrong') known.fill(0xab, b * BLOCK_HASH_BYTES, (b + 1) * BLOCK_HASH_BYTES);
}

function expectedKind(b: number, skipZeroBlocks: boolean): number {
  if (state(b) === 'right') return BlockKind.UNCHANGED;
  if (b % 5 !== 0) return BlockKind.DATA;
  return skipZeroBlocks && state(b) === 'unknown' ? BlockKind.SKIPPED_ZERO : BlockKind.ZERO;
}

for (const threadCount of [1, 2]) {
  for (const skipZeroBlocks of [true, false]) {
    test(`${threadCount} thread(s), zero blocks ${skipZeroBlocks ? 'skipped' : 'sent'}: every block judged and its bytes kept, in order`, async () => {
      const threads = new ScanThreads(threadCount);
      try {
        // Twice, so the second pass reads into slots the first released.
        for (let pass = 0; pass < 2; pass++) {
          let nextBlock = 5;
          const units = scanUnits({
            threads, path, sizeBytes: SIZE, blockCount: BLOCKS, startBlock: 5, skipZeroBlocks,
            known: (first, count) => new Uint8Array(known.subarray(first * BLOCK_HASH_BYTES, (first + count) * BLOCK_HASH_BYTES)),
          });
          for await (const u of units) {
            assert.equal(u.firstBlock, nextBlock, 'units come in disk order from the start block');
            for (let i = 0; i < u.count; i++) {
              const b = u.firstBlock + i;
              assert.equal(u.kinds[i], expectedKind(b, skipZeroBlocks), `kind of block ${b}`);
              assert.deepEqual(Buffer.from(u.hashes.subarray(i * BLOCK_HASH_BYTES, (i + 1) * BLOCK_HASH_BYTES)), blockHash(blockOf(b)), `hash of block ${b}`);
              if (u.kinds[i] === BlockKind.DATA) {
                const bytes = Buffer.from(u.data.buffer, u.data.byteOffset + u.dataAt[i], blockOf(b).length);
                assert.ok(bytes.equals(blockOf(b)), `bytes of block ${b}`);
              } else assert.equal(u.dataAt[i], -1);
            }
            nextBlock += u.count;
            if (u.inSlot) threads.release(u.slotIndex);
          }
          assert.equal(nextBlock, BLOCKS, 'every block up to the short last one');
        }
      } finally {
        await threads.close();
      }
    });
  }
}

test('a disk that cannot be read fails the pass with the reason', async () => {
  const threads = new ScanThreads(2);
  try {
    const units = scanUnits({ threads, path: join(dir, 'missing.img'), sizeBytes: SIZE, blockCount: BLOCKS, startBlock: 0, skipZeroBlocks: true, known: (_f, count) => new Uint8Array(count * BLOCK_HASH_BYTES) });
    await assert.rejects(async () => {
      for await (const _ of units) void _;
    }, /ENOENT.*missing\.img/);
  } finally {
    await threads.close();
  }
});
