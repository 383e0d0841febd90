/**
 * The two ways a connection receives: into buffers it chooses (sockets from the server's own
 * listener; a large write's payload lands in the buffer it is served from) and through 'data'
 * events (any other socket). The same traffic, cut into odd fragments, must land byte-exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createNbdServer, fixedExports, type NbdExport, type NbdServer } from '../../core/nbd/index.ts';
import { NbdCmd, NBD_REQUEST_MAGIC } from '../../core/nbd/protocol.ts';
import { RawNbdClient } from './raw-client.ts';
import { patternBytes } from './helpers.ts';

const SIZE_BYTES = 16 * 1024 * 1024;
const KiB = 1024;
/** Lengths of the writes, in order: small, around the direct-payload threshold, large, odd. */
const LENGTHS = [4 * KiB, 64 * KiB, 1024 * KiB, 3, 64 * KiB - 1, 64 * KiB + 1, 200 * KiB + 7, 512, 1024 * KiB + 1, 4 * KiB, 2048 * KiB, 17, 96 * KiB];

interface MemoryExport extends NbdExport {
  image: Buffer;
  /** Length of each write that came through `writeParts`. */
  partsWrites: number[];
}

/**
 * A memory disk whose every third write settles later, copying its data only then: a payload
 * buffer reused before its call settled would show in the image.
 */
function memoryExport(): MemoryExport {
  const image = Buffer.alloc(SIZE_BYTES);
  let calls = 0;
  const store = (offset: number, parts: Buffer[]): void | Promise<void> => {
    const copy = () => {
      let at = offset;
      for (const p of parts) at += p.copy(image, at);
    };
    if (++calls % 3 !== 0) return copy();
    return new Promise((resolve) => setTimeout(() => resolve(copy()), 1 + (calls % 4)));
  };
  const exp: MemoryExport = {
    name: 'mem',
    sizeBytes: SIZE_BYTES,
    readOnly: false,
    multiConn: false,
    image,
    partsWrites: [],
    read: (offset, length) => Buffer.from(image.subarray(offset, offset + length)),
    write: (offset, data) => store(offset, [data]),
    writeParts(offset, parts, lengthBytes) {
      exp.partsWrites.push(lengthBytes);
      return store(offset, parts);
    },
    flush: () => undefined,
    trim: () => undefined,
    writeZeroes: (offset, length) => void image.fill(0, offset, offset + length),
  };
  return exp;
}

/** Every request of the traffic as bytes, and the image it leaves (writes do not overlap). */
function traffic(): { bytes: Buffer; expected: Buffer; count: number } {
  const expected = Buffer.alloc(SIZE_BYTES);
  const pieces: Buffer[] = [];
  let offset = 0;
  let handle = 1n;
  for (const [i, length] of LENGTHS.entries()) {
    const payload = patternBytes(length, i + 7);
    const header = Buffer.alloc(28);
    header.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    header.writeUInt16BE(0, 4);
    header.writeUInt16BE(NbdCmd.WRITE, 6);
    header.writeBigUInt64BE(handle++, 8);
    header.writeBigUInt64BE(BigInt(offset), 16);
    header.writeUInt32BE(length, 24);
    pieces.push(header, payload);
    payload.copy(expected, offset);
    offset += length + 513;
  }
  return { bytes: Buffer.concat(pieces), expected, count: LENGTHS.length };
}

/** Sends `bytes` in fragments of 1 byte to 96 KiB, yielding between them so that reads split. */
async function sendInFragments(client: RawNbdClient, bytes: Buffer, seed: number): Promise<void> {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
  for (let at = 0; at < bytes.length; ) {
    const r = next();
    const n = Math.min(bytes.length - at, r % 5 === 0 ? 1 + (r % 40) : 1 + (r % (96 * KiB)));
    client.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function runTraffic(port: number, exp: MemoryExport, seed: number): Promise<void> {
  const { client } = await RawNbdClient.open(port, 'mem');
  const t = traffic();
  await sendInFragments(client, t.bytes, seed);
  const handles = new Set<bigint>();
  for (let i = 0; i < t.count; i++) {
    const reply = await client.readSimpleReply();
    assert.equal(reply.errno, 0, `reply for handle ${reply.handle}`);
    handles.add(reply.handle);
  }
  assert.equal(handles.size, t.count, 'one reply per request');
  // A read after the writes: the connection is still in step.
  const back = await client.request({ type: NbdCmd.READ, offset: 64 * KiB + 4 * KiB + 513 * 2, length: 1024 * KiB });
  assert.equal(back.errno, 0);
  assert.ok(back.data.equals(t.expected.subarray(64 * KiB + 4 * KiB + 513 * 2, 64 * KiB + 4 * KiB + 513 * 2 + 1024 * KiB)));
  client.destroy();
  await client.closed;
  assert.ok(exp.image.equals(t.expected), 'the image holds exactly what was written');
}

test('through its own listener, writes in odd fragments land byte-exact and large payloads arrive whole', { timeout: 60_000 }, async () => {
  for (const seed of [1, 2, 3]) {
    const exp = memoryExport();
    const server = createNbdServer({ exports: fixedExports([exp]) });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      await runTraffic(port, exp, seed);
      assert.deepEqual(exp.partsWrites.filter((n) => n >= 64 * KiB), [], 'payloads from 64 KiB were received into buffers of their own');
    } finally {
      await server.close();
    }
  }
});

test('with requests waiting their turn, payloads received meanwhile still land byte-exact', { timeout: 60_000 }, async () => {
  for (const seed of [6, 7, 8]) {
    const exp = memoryExport();
    // Two calls at a time: a payload completes while its request waits, and later requests queue whole.
    const server = createNbdServer({ exports: fixedExports([exp]), maxInFlightPerConnection: 2 });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      await runTraffic(port, exp, seed);
    } finally {
      await server.close();
    }
  }
});

test('a socket accepted elsewhere is read through data events, with the same result', { timeout: 60_000 }, async () => {
  for (const seed of [4, 5]) {
    const exp = memoryExport();
    const server: NbdServer = createNbdServer({ exports: fixedExports([exp]), maxInFlightPerConnection: 2 });
    const listener: Server = createServer((socket: Socket) => server.serveSocket(socket));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as { port: number }).port;
    try {
      await runTraffic(port, exp, seed);
      assert.ok(exp.partsWrites.some((n) => n >= 64 * KiB), 'large payloads split across reads came as pieces');
    } finally {
      await server.close();
      await new Promise((resolve) => listener.close(resolve));
    }
  }
});

test('a client gone in the middle of a large payload leaves the server serving others', { timeout: 60_000 }, async () => {
  const exp = memoryExport();
  const server = createNbdServer({ exports: fixedExports([exp]) });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const { client } = await RawNbdClient.open(port, 'mem');
    const t = traffic();
    // Header and part of the 1 MiB payload of the third request, then gone.
    client.write(t.bytes.subarray(0, 28 + 4 * KiB + 28 + 64 * KiB + 28 + 300 * KiB));
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.destroy();
    await client.closed;
    const other = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    });
    other.destroy();
    await runTraffic(port, memoryExportInto(exp), 9);
  } finally {
    await server.close();
  }
});

/** The same export again, its image and counters cleared (it is the one the server serves). */
function memoryExportInto(exp: MemoryExport): MemoryExport {
  exp.image.fill(0);
  exp.partsWrites.length = 0;
  return exp;
}
