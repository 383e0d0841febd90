/**
 * Requests a server must refuse, and backends that fail: each gets the spec's error value, the
 * connection stays usable (or is dropped where the spec says so), and the process never sees
 * an uncaught exception or unhandled rejection.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixedExports, NbdErrno, NbdError, openFileExport } from '../../core/nbd/index.ts';
import type { NbdExport } from '../../core/nbd/index.ts';
import { CmdFlag, NbdCmd } from '../../core/nbd/protocol.ts';
import { describeRun, patternBytes, qemuIo, scratchDir, startFileServer, type TestServer } from './helpers.ts';
import { RawNbdClient } from './raw-client.ts';

const MiB = 1024 * 1024;
const SIZE = MiB;

const processFaults: unknown[] = [];
const onFault = (err: unknown) => void processFaults.push(err);

/** An in-memory export whose behaviour depends on the offset asked for. */
function faultyExport(): NbdExport {
  const data = patternBytes(SIZE, 5);
  return {
    name: 'faulty',
    sizeBytes: SIZE,
    readOnly: false,
    read(offset, length) {
      if (offset === 0) throw new Error('disk on fire');
      if (offset === 4096) return data.subarray(offset, offset + length - 1);
      if (offset === 8192) return Promise.reject(new Error('later fire'));
      if (offset === 12288) return Promise.reject(Object.assign(new Error('quota'), { code: 'EDQUOT' }));
      return data.subarray(offset, offset + length);
    },
    write(offset) {
      if (offset === 0) throw new NbdError(NbdErrno.ENOSPC, 'thin pool full');
      return Promise.resolve();
    },
    flush: () => Promise.reject(new Error('flush failed')),
    trim: () => {
      throw 'not even an Error';
    },
    writeZeroes: () => undefined,
  };
}

describe('nbd errors', { timeout: 120_000 }, () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let srv: TestServer;
  let rwPath: string;
  let roPath: string;
  const original = patternBytes(SIZE, 77);

  before(async () => {
    process.on('unhandledRejection', onFault);
    process.on('uncaughtException', onFault);
    scratch = await scratchDir();
    rwPath = join(scratch.dir, 'disk0.img');
    roPath = join(scratch.dir, 'ro.img');
    await writeFile(rwPath, original);
    await writeFile(roPath, original);
    const files = [
      await openFileExport(rwPath, { name: 'disk0' }),
      await openFileExport(roPath, { name: 'ro', readOnly: true }),
    ];
    srv = await startFileServer([], { source: fixedExports([...files, faultyExport()]) });
    srv.exports.push(...files);
  });

  after(async () => {
    await srv.close();
    await scratch.cleanup();
    process.off('unhandledRejection', onFault);
    process.off('uncaughtException', onFault);
    assert.deepEqual(processFaults, [], 'no uncaught exception or unhandled rejection');
  });

  test('a read-only export refuses every write with EPERM and still reads', { timeout: 60_000 }, async () => {
    const { client, flags } = await RawNbdClient.open(srv.port, 'ro');
    assert.ok(flags & 2, 'NBD_FLAG_READ_ONLY');
    const payload = Buffer.alloc(4096, 0xee);
    assert.equal((await client.request({ type: NbdCmd.WRITE, offset: 0, payload })).errno, NbdErrno.EPERM);
    assert.equal((await client.request({ type: NbdCmd.WRITE_ZEROES, offset: 0, length: 4096 })).errno, NbdErrno.EPERM);
    assert.equal((await client.request({ type: NbdCmd.TRIM, offset: 0, length: 4096 })).errno, NbdErrno.EPERM);
    const read = await client.request({ type: NbdCmd.READ, offset: 0, length: 4096 });
    assert.equal(read.errno, 0);
    assert.deepEqual(read.data, original.subarray(0, 4096));
    assert.equal((await client.request({ type: NbdCmd.FLUSH })).errno, 0);
    client.destroy();

    const q = await qemuIo(srv.uri('ro'), ['write -P 0xee 0 4k']);
    assert.notEqual(q.code, 0, describeRun(q));
    assert.deepEqual(await readFile(roPath), original, 'the read-only file is unchanged');
  });

  test('out-of-range requests get EINVAL or ENOSPC and the connection stays usable', { timeout: 60_000 }, async () => {
    const { client } = await RawNbdClient.open(srv.port, 'disk0');
    const cases: [string, Parameters<RawNbdClient['request']>[0], number][] = [
      ['read past the end', { type: NbdCmd.READ, offset: SIZE - 512, length: 1024 }, NbdErrno.EINVAL],
      ['read at 2^63', { type: NbdCmd.READ, offset: 2 ** 63, length: 512 }, NbdErrno.EINVAL],
      ['read over 32 MiB', { type: NbdCmd.READ, offset: 0, length: 32 * MiB + 1 }, NbdErrno.EINVAL],
      ['write past the end', { type: NbdCmd.WRITE, offset: SIZE - 100, payload: Buffer.alloc(200, 1) }, NbdErrno.ENOSPC],
      ['write zeroes past the end', { type: NbdCmd.WRITE_ZEROES, offset: SIZE, length: 1 }, NbdErrno.ENOSPC],
      ['trim past the end', { type: NbdCmd.TRIM, offset: SIZE - 1, length: 2 }, NbdErrno.EINVAL],
      ['unknown command', { type: 42 }, NbdErrno.EINVAL],
      ['cache, not advertised', { type: NbdCmd.CACHE, length: 512 }, NbdErrno.EINVAL],
      ['block status, not negotiated', { type: NbdCmd.BLOCK_STATUS, length: 512 }, NbdErrno.EINVAL],
      ['unknown flag', { type: NbdCmd.READ, flags: 1 << 9, length: 512 }, NbdErrno.EINVAL],
      ['NO_HOLE on a write', { type: NbdCmd.WRITE, flags: CmdFlag.NO_HOLE, payload: Buffer.alloc(8) }, NbdErrno.EINVAL],
      ['DF without structured replies', { type: NbdCmd.READ, flags: CmdFlag.DF, length: 512 }, NbdErrno.EINVAL],
    ];
    let handle = 100n;
    for (const [what, request, errno] of cases) {
      handle++;
      const r = await client.request({ ...request, handle });
      assert.equal(r.errno, errno, what);
      assert.equal(r.handle, handle, `${what}: handle echoed`);
      // After each refusal the connection still serves a good request.
      const ok = await client.request({ type: NbdCmd.READ, offset: 8192, length: 512, handle: 1n });
      assert.equal(ok.errno, 0, `${what}: next read`);
      assert.deepEqual(ok.data, original.subarray(8192, 8704), `${what}: next read data`);
    }
    client.destroy();
    assert.deepEqual(await readFile(rwPath), original, 'refused writes changed nothing');
  });

  test('a write over the size limit is refused after its payload is skipped', { timeout: 60_000 }, async () => {
    const { client } = await RawNbdClient.open(srv.port, 'disk0');
    const big = Buffer.alloc(32 * MiB + 4096, 0x55);
    const r = await client.request({ type: NbdCmd.WRITE, offset: 0, payload: big, handle: 9n });
    assert.equal(r.errno, NbdErrno.EINVAL);
    assert.equal(r.handle, 9n);
    const ok = await client.request({ type: NbdCmd.WRITE, offset: 4096, payload: Buffer.alloc(512, 0x66) });
    assert.equal(ok.errno, 0);
    const back = await client.request({ type: NbdCmd.READ, offset: 4096, length: 512 });
    assert.deepEqual(back.data, Buffer.alloc(512, 0x66));
    // Restore what the other tests expect.
    assert.equal((await client.request({ type: NbdCmd.WRITE, offset: 4096, payload: original.subarray(4096, 4608) })).errno, 0);
    client.destroy();
  });

  test('backend failures become error replies', { timeout: 60_000 }, async () => {
    const { client } = await RawNbdClient.open(srv.port, 'faulty');
    const expect = async (what: string, request: Parameters<RawNbdClient['request']>[0], errno: number) => {
      const r = await client.request(request);
      assert.equal(r.errno, errno, what);
      assert.equal(r.data.length, 0, `${what}: no payload with an error`);
    };
    await expect('read throws', { type: NbdCmd.READ, offset: 0, length: 512 }, NbdErrno.EIO);
    await expect('read returns a short buffer', { type: NbdCmd.READ, offset: 4096, length: 512 }, NbdErrno.EIO);
    await expect('read rejects', { type: NbdCmd.READ, offset: 8192, length: 512 }, NbdErrno.EIO);
    await expect('read rejects with EDQUOT', { type: NbdCmd.READ, offset: 12288, length: 512 }, NbdErrno.ENOSPC);
    await expect('write throws NbdError', { type: NbdCmd.WRITE, offset: 0, payload: Buffer.alloc(512) }, NbdErrno.ENOSPC);
    await expect('flush rejects', { type: NbdCmd.FLUSH }, NbdErrno.EIO);
    await expect('trim throws a string', { type: NbdCmd.TRIM, offset: 0, length: 512 }, NbdErrno.EIO);
    const ok = await client.request({ type: NbdCmd.READ, offset: 16384, length: 512 });
    assert.equal(ok.errno, 0);
    assert.deepEqual(ok.data, patternBytes(SIZE, 5).subarray(16384, 16896));
    assert.equal((await client.request({ type: NbdCmd.WRITE, offset: 512, payload: Buffer.alloc(512) })).errno, 0);
    client.destroy();
    assert.ok(srv.log.lines.some((l) => l.level === 'warn' && l.message === 'nbd request failed'));
  });

  test('a request with bad magic drops that connection only', { timeout: 60_000 }, async () => {
    const a = await RawNbdClient.open(srv.port, 'disk0');
    const b = await RawNbdClient.open(srv.port, 'disk0');
    a.client.sendRequest({ type: NbdCmd.READ, length: 512 }, 0x12345678);
    await a.client.closed;
    const r = await b.client.request({ type: NbdCmd.READ, offset: 0, length: 512 });
    assert.equal(r.errno, 0);
    assert.deepEqual(r.data, original.subarray(0, 512));
    b.client.destroy();
    const q = await qemuIo(srv.uri('disk0'), ['read -v 0 16']);
    assert.equal(q.code, 0, describeRun(q));
  });

  test('garbage in place of the handshake drops that connection only', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    await c.greeting();
    c.write(Buffer.alloc(100, 0xff));
    await c.closed;
    const q = await qemuIo(srv.uri('disk0'), ['read -v 0 16']);
    assert.equal(q.code, 0, describeRun(q));
  });
});
