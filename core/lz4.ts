/**
 * LZ4 block compression through `lz4-wasm-nodejs` (pure WebAssembly). Its output is the LZ4
 * block format with a 4-byte little-endian size prefix, not the frame format of the `lz4` command.
 *
 * `compressInto` and `decompressInto` call the module's WebAssembly exports themselves and
 * copy the result straight to where it goes: the package's own wrappers copy every result
 * into a new array first, and at 64 KiB a block those arrays are most of what makes V8 collect.
 */
import lz4 from 'lz4-wasm-nodejs';
import { sampledEntropyBits } from './byte-entropy.ts';

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
/** Shorter payloads (from 1 KiB) are judged by the entropy of their bytes instead: cheaper than LZ4 on them. */
const ENTROPY_FROM_BYTES = 1024;
/**
 * Bits per byte from which a short payload is left alone: what a sample of random bytes
 * measures (about 7.82), as encrypted disks and compressed files write. LZ4 has no entropy
 * coding, so it could only gain from repeats, which such bytes do not hold. A mix of text and
 * random bytes, which LZ4 does shrink, measures well below.
 */
const ENTROPY_MAX_BITS = 7.7;
/**
 * Compression is kept only when it saves at least this fraction of the payload: below that,
 * decompressing at the other end costs more than the bytes are worth (ZFS keeps the same rule).
 */
const MIN_SAVING_FRACTION = 1 / 8;

/** Whether `packedBytes` for `rawBytes` saves enough to be sent compressed. */
function pays(packedBytes: number, rawBytes: number): boolean {
  return packedBytes <= rawBytes - rawBytes * MIN_SAVING_FRACTION;
}

/**
 * Whether a cheap look shows, before the full pass, that compression will not pay: for a long
 * payload, `compressedBytes` of its middle 4 KiB; for a short one (from 1 KiB), the entropy of
 * its bytes.
 */
function judgedIncompressible(data: Uint8Array, compressedBytes: (sample: Uint8Array) => number): boolean {
  if (data.length < SAMPLE_FROM_BYTES) return data.length >= ENTROPY_FROM_BYTES && sampledEntropyBits(data) >= ENTROPY_MAX_BITS;
  const mid = Math.floor((data.length - SAMPLE_BYTES) / 2);
  return compressedBytes(data.subarray(mid, mid + SAMPLE_BYTES)) > SAMPLE_BYTES * SAMPLE_MAX_RATIO;
}

/**
 * Like `compressIfSmaller`, but gives up early on data that a 4 KiB sample (or, for a short
 * payload, the entropy of its bytes) shows to be incompressible (encrypted or already
 * compressed blocks), which would otherwise cost a full compression pass for nothing, and
 * keeps the result only when it saves at least an eighth.
 */
export function compressIfWorthwhile(data: Uint8Array): Buffer | undefined {
  if (judgedIncompressible(data, (sample) => lz4.compress(sample).length)) return undefined;
  const packed = compressIfSmaller(data);
  return packed && pays(packed.length, data.length) ? packed : undefined;
}

/** Decompresses a payload made by `compressIfSmaller`; throws if it is not `expectedBytes` long. */
export function decompress(packed: Uint8Array, expectedBytes: number): Buffer {
  checkPrefix(packed, expectedBytes);
  let out: Uint8Array;
  try {
    out = lz4.decompress(packed);
  } catch (e) {
    // The module throws its message as a bare string.
    throw e instanceof Error ? e : new Error(`not a valid LZ4 block: ${String(e)}`);
  }
  if (out.length !== expectedBytes) {
    throw new Error(`compressed payload gave ${out.length} bytes, expected ${expectedBytes}`);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

function checkPrefix(packed: Uint8Array, expectedBytes: number): void {
  if (packed.length < 4) throw new Error('compressed payload shorter than its size prefix');
  const declared = packed[0] | (packed[1] << 8) | (packed[2] << 16) | (packed[3] * 0x100_0000);
  if (declared !== expectedBytes) {
    throw new Error(`compressed payload declares ${declared} bytes, record says ${expectedBytes}`);
  }
}

/** The exports of the package's module, as its wrappers (wasm-bindgen) use them. */
interface Lz4Exports {
  memory: { buffer: ArrayBuffer };
  compress(retptr: number, ptr: number, len: number): void;
  decompress(retptr: number, ptr: number, len: number): void;
  __wbindgen_add_to_stack_pointer(delta: number): number;
  __wbindgen_malloc(bytes: number): number;
  __wbindgen_free(ptr: number, bytes: number): void;
}

const raw = (lz4 as unknown as { __wasm?: Partial<Lz4Exports> }).__wasm;
/** Undefined if a version of the package exports other functions: then the wrappers serve. */
const wasm: Lz4Exports | undefined = raw && ['compress', 'decompress', '__wbindgen_add_to_stack_pointer', '__wbindgen_malloc', '__wbindgen_free'].every((k) => typeof (raw as Record<string, unknown>)[k] === 'function') && raw.memory?.buffer instanceof ArrayBuffer
  ? (raw as Lz4Exports)
  : undefined;

/**
 * Runs the module's `compress` or `decompress` on `input` and hands its result to `use` as a
 * view of the module's memory, valid only during the call; returns what `use` returns, or
 * undefined when the module reported an error.
 */
function run<T>(w: Lz4Exports, fn: 'compress' | 'decompress', input: Uint8Array, use: (result: Uint8Array) => T): T | undefined {
  const retptr = w.__wbindgen_add_to_stack_pointer(-16);
  try {
    // The module takes ownership of the input and frees it.
    const ptr = w.__wbindgen_malloc(input.length);
    new Uint8Array(w.memory.buffer, ptr, input.length).set(input);
    w[fn](retptr, ptr, input.length);
    const ret = new Int32Array(w.memory.buffer, retptr, 4);
    const [r0, r1] = [ret[0], ret[1]];
    // decompress: ret[3] set means ret[2] names an error object the wrappers keep (a few
    // bytes, left there); the caller repeats the call through the wrapper, which throws.
    if (fn === 'decompress' && ret[3]) return undefined;
    try {
      return use(new Uint8Array(w.memory.buffer, r0, r1));
    } finally {
      w.__wbindgen_free(r0, r1);
    }
  } finally {
    w.__wbindgen_add_to_stack_pointer(16);
  }
}

/**
 * Compresses `data` into `out` at `at` (the same bytes `compressIfWorthwhile` returns) and
 * returns their length, or undefined, writing nothing, where `compressIfWorthwhile` gives
 * nothing or the result would not fit in `out`.
 */
export function compressInto(data: Uint8Array, out: Uint8Array, at: number): number | undefined {
  if (!wasm) {
    const packed = compressIfWorthwhile(data);
    if (!packed || at + packed.length > out.length) return undefined;
    out.set(packed, at);
    return packed.length;
  }
  if (judgedIncompressible(data, (sample) => run(wasm, 'compress', sample, (r) => r.length)!)) return undefined;
  return run(wasm, 'compress', data, (r) => {
    if (!pays(r.length, data.length) || at + r.length > out.length) return undefined;
    out.set(r, at);
    return r.length;
  });
}

/**
 * Decompresses a payload made by `compressIfSmaller` into `out` at `at`; throws, as
 * `decompress` does, if it does not give exactly `expectedBytes` (or they do not fit).
 */
export function decompressInto(packed: Uint8Array, expectedBytes: number, out: Uint8Array, at: number): void {
  checkPrefix(packed, expectedBytes);
  if (at + expectedBytes > out.length) throw new RangeError(`no room for ${expectedBytes} decompressed bytes`);
  const copied = wasm && run(wasm, 'decompress', packed, (r) => {
    if (r.length !== expectedBytes) throw new Error(`compressed payload gave ${r.length} bytes, expected ${expectedBytes}`);
    out.set(r, at);
    return true;
  });
  if (!copied) out.set(decompress(packed, expectedBytes), at);
}
