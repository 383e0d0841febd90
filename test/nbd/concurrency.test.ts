/**
 * Several clients at once, requests in flight together, disconnects and server shutdown
 * while requests are pending.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { createNbdServer, fixedExports } from '../../core/nbd/index.ts';
import type { NbdExport } from '../../core/nbd/index.ts';
import { NbdCmd, NbdErrno } from '../../core/nbd/protocol.ts';
import { describeRun, patternBytes, qemuIo, scratchDir, startFileServer } from './helpers.ts';
import { RawNbdClient } from './raw-client.ts';

const MiB = 1024 * 1024;

test('six qemu-io clients writing at once each land in their own region', { timeout: 60_000 }, async () => {
  const scratch = await scratchDir();
  const path = join(scratch.dir, 'disk0.img');
  const model = patternBytes(12 * MiB, 3);
  await writeFile(path, model);
  const srv = await startFileServer([{ name: 'disk0', path }]);
  try {
    const clients = Array.from({ length: 6 }, (_, i) => {
      const base = 2 * i * MiB;
      const pattern = 0x10 + i;
      const commands = [];
      // A mix of small and large writes, each read back by the same client.
      for (let k = 0; k < 8; k++) commands.push(`write -P ${pattern} ${base + k * 65536} 4k`);
      commands.push(`write -P ${pattern} ${base + MiB} 1M`);
      commands.push(`read -P ${pattern} ${base + MiB} 1M`);
      for (let k = 0; k < 8; k++) {
        model.fill(pattern, base + k * 65536, base + k * 65536 + 4096);
      }
      model.fill(pattern, base + MiB, base + 2 * MiB);
      return qemuIo(srv.uri('disk0'), commands);
    });
    for (const r of await Promise.all(clients)) {
      assert.equal(r.code, 0, describeRun(r));
      assert.doesNotMatch(r.stdout, /fail/i, describeRun(r));
    }
    const actual = await readFile(path);
    const at = actual.findIndex((b, i) => b !== model[i]);
    assert.equal(at, -1, `file differs from the model first at byte ${at}`);
  } finally {
    await srv.close();
    await scratch.cleanup();
  }
});

/** An export whose calls wait until the test releases them. */
function gatedExport(): NbdExport & { started: string[]; release(tag: string): void } {
  const gates = new Map<string, () => void>();
  const started: string[] = [];
  const wait = (tag: string) =>
    new Promise<void>((resolve) => {
      started.push(tag);
      gates.set(tag, resolve);
    });
  return {
    name: 'gated',
    sizeBytes: MiB,
    readOnly: false,
    started,
    release(tag) {
      const open = gates.get(tag);
      assert.ok(open, `no pending call ${tag}`);
      gates.delete(tag);
      open();
    },
    read: async (offset, length) => {
      await wait(`read@${offset}`);
      return Buffer.alloc(length, offset / 4096);
    },
    write: (offset) => wait(`write@${offset}`),
    flush: () => wait('flush'),
    trim: () => {},
    writeZeroes: () => {},
  };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('replies go out as calls finish, paired by handle, at most maxInFlight at once', { timeout: 60_000 }, async () => {
  const exp = gatedExport();
  const server = createNbdServer({ exports: fixedExports([exp]), maxInFlightPerConnection: 2 });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const { client } = await RawNbdClient.open(port, 'gated');
    for (let i = 1; i <= 3; i++) client.sendRequest({ type: NbdCmd.READ, handle: BigInt(i), offset: i * 4096, length: 4096 });
    await until(() => exp.started.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(exp.started, ['read@4096', 'read@8192'], 'the third waits for a free slot');

    exp.release('read@8192');
    const second = await client.readSimpleReply(4096);
    assert.equal(second.handle, 2n);
    assert.deepEqual(second.data, Buffer.alloc(4096, 2));
    await until(() => exp.started.length === 3);

    exp.release('read@12288');
    exp.release('read@4096');
    const replies = [await client.readSimpleReply(4096), await client.readSimpleReply(4096)];
    assert.deepEqual(replies.map((r) => r.handle).sort(), [1n, 3n]);
    for (const r of replies) assert.deepEqual(r.data, Buffer.alloc(4096, Number(r.handle)));
    client.destroy();
  } finally {
    await server.close();
  }
});

test('NBD_CMD_DISC lets pending requests finish and reply first', { timeout: 60_000 }, async () => {
  const exp = gatedExport();
  const server = createNbdServer({ exports: fixedExports([exp]) });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const { client } = await RawNbdClient.open(port, 'gated');
    client.sendRequest({ type: NbdCmd.WRITE, handle: 5n, offset: 0, payload: Buffer.alloc(512) });
    client.sendRequest({ type: NbdCmd.DISC });
    await until(() => exp.started.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(client.closedNow, false, 'still open while the write is pending');
    exp.release('write@0');
    const r = await client.readSimpleReply();
    assert.deepEqual([r.handle, r.errno], [5n, 0]);
    await client.closed;
    await until(() => server.connectionCount === 0);
  } finally {
    await server.close();
  }
});

test('close() answers pending requests, refuses new ones, and ends every connection', { timeout: 60_000 }, async () => {
  const exp = gatedExport();
  const server = createNbdServer({ exports: fixedExports([exp]) });
  const { port } = await server.listen('127.0.0.1', 0);
  const { client } = await RawNbdClient.open(port, 'gated');
  client.sendRequest({ type: NbdCmd.FLUSH, handle: 1n });
  await until(() => exp.started.length === 1);
  const closing = server.close();
  await new Promise((r) => setTimeout(r, 30));
  client.sendRequest({ type: NbdCmd.READ, handle: 2n, offset: 0, length: 512 });
  const refused = await client.readSimpleReply();
  assert.deepEqual([refused.handle, refused.errno], [2n, NbdErrno.ESHUTDOWN]);
  exp.release('flush');
  const flushed = await client.readSimpleReply();
  assert.deepEqual([flushed.handle, flushed.errno], [1n, 0]);
  await client.closed;
  await closing;
  assert.equal(server.connectionCount, 0);
  await assert.rejects(RawNbdClient.connect(port), 'no longer listening');
});

test('close() gives up on a call that never finishes after closeTimeoutMs', { timeout: 60_000 }, async () => {
  const exp = gatedExport();
  const server = createNbdServer({ exports: fixedExports([exp]), closeTimeoutMs: 200 });
  const { port } = await server.listen('127.0.0.1', 0);
  const { client } = await RawNbdClient.open(port, 'gated');
  client.sendRequest({ type: NbdCmd.FLUSH });
  await until(() => exp.started.length === 1);
  const start = Date.now();
  await server.close();
  assert.ok(Date.now() - start < 2000);
  await client.closed;
  exp.release('flush');
});

test('a client that never finishes the handshake is dropped', { timeout: 60_000 }, async () => {
  const server = createNbdServer({ exports: fixedExports([]), handshakeTimeoutMs: 100 });
  const { port } = await server.listen('127.0.0.1', 0);
  try {
    const c = await RawNbdClient.connect(port);
    await c.greeting();
    await c.closed;
  } finally {
    await server.close();
  }
});
