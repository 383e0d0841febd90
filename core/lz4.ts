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
