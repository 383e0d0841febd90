/**
 * LZ4 block compression through `lz4-wasm-nodejs` (pure WebAssembly). Its output is the LZ4
 * block format with a 4-byte little-endian size prefix, not the frame format of the `lz4` command.
 */
import lz4 from 'lz4-wasm-nodejs';

/** Compresses `data`; returns undefined when the result would not be smaller. */
export function compressIfSmaller(data: Uint8Array): Buffer | undefined {
  const packed = lz4.compress(data);
  if (packed.length >= data.length) return undefined;
  return Buffer.from(packed.buffer, packed.byteOffset, packed.length);
}

/** Payloads at least this long are first judged by compressing a sample. */
const SAMPLE_FROM_BYTES = 16 * 1024;
const SAMPLE_BYTES = 4 * 1024;
/** A sample that does not shrink below this fraction predicts an incompressible payload. */
const SAMPLE_MAX_RATIO = 0.9;

/**
 * Like `compressIfSmaller`, but gives up early on data that a 4 KiB sample shows to be
 * incompressible (encrypted or already compressed blocks), which would otherwise cost a full
 * compression pass for nothing.
 */
export function compressIfWorthwhile(data: Uint8Array): Buffer | undefined {
  if (data.length >= SAMPLE_FROM_BYTES) {
    const mid = Math.floor((data.length - SAMPLE_BYTES) / 2);
    const sample = lz4.compress(data.subarray(mid, mid + SAMPLE_BYTES));
    if (sample.length > SAMPLE_BYTES * SAMPLE_MAX_RATIO) return undefined;
  }
  return compressIfSmaller(data);
}

/** Decompresses a payload made by `compressIfSmaller`; throws if it is not `expectedBytes` long. */
export function decompress(packed: Uint8Array, expectedBytes: number): Buffer {
  if (packed.length < 4) throw new Error('compressed payload shorter than its size prefix');
  const declared = Buffer.from(packed.buffer, packed.byteOffset, 4).readUInt32LE(0);
  if (declared !== expectedBytes) {
    throw new Error(`compressed payload declares ${declared} bytes, record says ${expectedBytes}`);
  }
  const out = lz4.decompress(packed);
  if (out.length !== expectedBytes) {
    throw new Error(`compressed payload gave ${out.length} bytes, expected ${expectedBytes}`);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}
