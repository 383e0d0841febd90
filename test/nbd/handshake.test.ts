import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createNbdServer, fixedExports } from '../../core/nbd/index.ts';
import type { NbdExport, NbdExportSource } from '../../core/nbd/index.ts';
import { ClientFlag, HandshakeFlag, NbdInfo, NbdOpt, NbdRep, TransmissionFlag } from '../../core/nbd/protocol.ts';
import { describeRun, run, scratchDir, startFileServer, type TestServer } from './helpers.ts';
import { RawNbdClient } from './raw-client.ts';

describe('nbd handshake', { timeout: 120_000 }, () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let srv: TestServer;

  before(async () => {
    scratch = await scratchDir();
    await writeFile(join(scratch.dir, 'disk0.img'), '');
    await truncate(join(scratch.dir, 'disk0.img'), 3 * 1024 * 1024 + 512);
    await writeFile(join(scratch.dir, 'disk1.img'), '');
    await truncate(join(scratch.dir, 'disk1.img'), 1024 * 1024);
    srv = await startFileServer([
      { name: 'disk0', path: join(scratch.dir, 'disk0.img'), description: 'the first disk' },
      { name: 'disk1', path: join(scratch.dir, 'disk1.img'), readOnly: true },
    ]);
  });

  after(async () => {
    await srv.close();
    await scratch.cleanup();
  });

  test('nbdinfo --list names every export with its size, description and flags', { timeout: 60_000 }, async () => {
    const r = await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${srv.port}`]);
    assert.equal(r.code, 0, describeRun(r));
    const info = JSON.parse(r.stdout) as { exports: Record<string, unknown>[] };
    const byName = new Map(info.exports.map((e) => [e['export-name'], e]));
    assert.deepEqual([...byName.keys()].sort(), ['disk0', 'disk1']);
    assert.equal(byName.get('disk0')!['export-size'], 3 * 1024 * 1024 + 512);
    assert.equal(byName.get('disk0')!.description, 'the first disk');
    assert.equal(byName.get('disk0')!.is_read_only, false);
    assert.equal(byName.get('disk1')!['export-size'], 1024 * 1024);
    assert.equal(byName.get('disk1')!.is_read_only, true);
  });

  test('nbdinfo on one export shows its size and capabilities', { timeout: 60_000 }, async () => {
    const r = await run('nbdinfo', ['--json', srv.uri('disk0')]);
    assert.equal(r.code, 0, describeRun(r));
    const e = (JSON.parse(r.stdout) as { exports: Record<string, unknown>[] }).exports[0];
    assert.equal(e['export-size'], 3 * 1024 * 1024 + 512);
    assert.equal(e.can_flush, true);
    assert.equal(e.can_fua, true);
    assert.equal(e.can_trim, true);
    assert.equal(e.can_zero, true);
    assert.equal(e.can_multi_conn, true);
    assert.equal(e.block_size_maximum, 32 * 1024 * 1024);
    const size = await run('nbdinfo', ['--size', srv.uri('disk0')]);
    assert.equal(size.stdout.trim(), String(3 * 1024 * 1024 + 512), describeRun(size));
  });

  test('nbdinfo on an unknown export fails', { timeout: 60_000 }, async () => {
    const r = await run('nbdinfo', [srv.uri('nosuch')]);
    assert.notEqual(r.code, 0, describeRun(r));
  });

  test('the greeting offers fixed newstyle and no zeroes', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    assert.equal(await c.greeting(), HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES);
    c.destroy();
  });

  test('NBD_OPT_LIST, unknown options, STRUCTURED_REPLY and STARTTLS, then ABORT', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    await c.greeting();
    c.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE | ClientFlag.C_NO_ZEROES);

    c.sendOption(NbdOpt.LIST);
    const names: string[] = [];
    for (;;) {
      const r = await c.readOptionReply();
      assert.equal(r.opt, NbdOpt.LIST);
      if (r.type === NbdRep.ACK) break;
      assert.equal(r.type, NbdRep.SERVER);
      const nameBytes = r.data.readUInt32BE(0);
      names.push(r.data.toString('utf8', 4, 4 + nameBytes));
    }
    assert.deepEqual(names, ['disk0', 'disk1']);

    c.sendOption(NbdOpt.LIST, Buffer.from('x'));
    assert.equal((await c.readOptionReply()).type, NbdRep.ERR_INVALID);

    for (const opt of [NbdOpt.STRUCTURED_REPLY, NbdOpt.STARTTLS, NbdOpt.SET_META_CONTEXT, 4242]) {
      c.sendOption(opt, Buffer.from('ignored data'));
      const r = await c.readOptionReply();
      assert.equal(r.opt, opt);
      assert.equal(r.type, NbdRep.ERR_UNSUP, `option ${opt}`);
    }

    c.sendOption(NbdOpt.ABORT);
    const ack = await c.readOptionReply();
    assert.equal(ack.type, NbdRep.ACK);
    await c.closed;
  });

  test('NBD_OPT_INFO and NBD_OPT_GO: export info, name, description, block sizes; unknown export', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    await c.greeting();
    c.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE | ClientFlag.C_NO_ZEROES);

    c.sendOption(NbdOpt.INFO, RawNbdClient.infoRequest('nosuch'));
    const unknown = await c.readInfoReplies();
    assert.equal(unknown.final.type, NbdRep.ERR_UNKNOWN);
    assert.equal(unknown.infos.size, 0);

    c.sendOption(NbdOpt.INFO, Buffer.from([0, 0, 0, 9, 1]));
    assert.equal((await c.readOptionReply()).type, NbdRep.ERR_INVALID);

    c.sendOption(NbdOpt.INFO, RawNbdClient.infoRequest('disk1', [NbdInfo.NAME, NbdInfo.DESCRIPTION, NbdInfo.BLOCK_SIZE]));
    const ro = await c.readInfoReplies();
    assert.equal(ro.final.type, NbdRep.ACK);
    const roExport = ro.infos.get(NbdInfo.EXPORT)!;
    assert.equal(Number(roExport.readBigUInt64BE(0)), 1024 * 1024);
    const roFlags = roExport.readUInt16BE(8);
    assert.ok(roFlags & TransmissionFlag.READ_ONLY);
    assert.equal(roFlags & (TransmissionFlag.SEND_TRIM | TransmissionFlag.SEND_WRITE_ZEROES | TransmissionFlag.SEND_FUA), 0);
    assert.equal(ro.infos.get(NbdInfo.NAME)!.toString(), 'disk1');
    assert.equal(ro.infos.has(NbdInfo.DESCRIPTION), false, 'disk1 has no description');
    const sizes = ro.infos.get(NbdInfo.BLOCK_SIZE)!;
    assert.deepEqual([sizes.readUInt32BE(0), sizes.readUInt32BE(4), sizes.readUInt32BE(8)], [1, 4096, 32 * 1024 * 1024]);

    c.sendOption(NbdOpt.GO, RawNbdClient.infoRequest('disk0', [NbdInfo.DESCRIPTION]));
    const go = await c.readInfoReplies();
    assert.equal(go.final.type, NbdRep.ACK);
    assert.equal(go.infos.get(NbdInfo.DESCRIPTION)!.toString(), 'the first disk');
    const flags = go.infos.get(NbdInfo.EXPORT)!.readUInt16BE(8);
    const expected =
      TransmissionFlag.HAS_FLAGS | TransmissionFlag.SEND_FLUSH | TransmissionFlag.SEND_FUA | TransmissionFlag.SEND_TRIM |
      TransmissionFlag.SEND_WRITE_ZEROES | TransmissionFlag.CAN_MULTI_CONN;
    assert.equal(flags, expected);

    // Transmission works right after the ACK.
    const r = await c.request({ type: 0, offset: 0, length: 512 });
    assert.equal(r.errno, 0);
    assert.deepEqual(r.data, Buffer.alloc(512));
    c.destroy();
  });

  test('NBD_OPT_EXPORT_NAME with and without the 124 zero bytes', { timeout: 60_000 }, async () => {
    for (const noZeroes of [true, false]) {
      const c = await RawNbdClient.connect(srv.port);
      await c.greeting();
      c.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE | (noZeroes ? ClientFlag.C_NO_ZEROES : 0));
      c.sendOption(NbdOpt.EXPORT_NAME, Buffer.from('disk0'));
      const answer = await c.read(10 + (noZeroes ? 0 : 124));
      assert.equal(Number(answer.readBigUInt64BE(0)), 3 * 1024 * 1024 + 512);
      assert.ok(answer.readUInt16BE(8) & TransmissionFlag.HAS_FLAGS);
      if (!noZeroes) assert.deepEqual(answer.subarray(10), Buffer.alloc(124));
      const r = await c.request({ type: 0, handle: 77n, offset: 4096, length: 16 });
      assert.equal(r.errno, 0);
      assert.equal(r.handle, 77n);
      c.destroy();
    }
  });

  test('the empty name is the first export', { timeout: 60_000 }, async () => {
    const { sizeBytes, client } = await RawNbdClient.open(srv.port, '');
    assert.equal(sizeBytes, 3 * 1024 * 1024 + 512);
    client.destroy();
  });

  test('NBD_OPT_EXPORT_NAME of an unknown export disconnects', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    await c.greeting();
    c.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE);
    c.sendOption(NbdOpt.EXPORT_NAME, Buffer.from('nosuch'));
    await c.closed;
    await assert.rejects(c.read(1));
  });

  test('unknown client flags or a bad option magic disconnect', { timeout: 60_000 }, async () => {
    const c = await RawNbdClient.connect(srv.port);
    await c.greeting();
    c.sendClientFlags(0x80);
    await c.closed;

    const d = await RawNbdClient.connect(srv.port);
    await d.greeting();
    d.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE);
    d.write(Buffer.alloc(16, 0x41));
    await d.closed;
  });
});

describe('nbd exports resolved at run time', { timeout: 120_000 }, () => {
  test('exports appear and disappear; every open is released once', { timeout: 60_000 }, async () => {
    const data = Buffer.alloc(8192, 7);
    const memory = (name: string): NbdExport => ({
      name,
      sizeBytes: data.length,
      readOnly: true,
      read: (offset, length) => data.subarray(offset, offset + length),
      write: () => {},
      flush: () => {},
      trim: () => {},
      writeZeroes: () => {},
    });
    const live = new Map<string, NbdExport>();
    const opened: string[] = [];
    const released: string[] = [];
    const source: NbdExportSource = {
      list: () => [...live.values()].map((e) => ({ name: e.name })),
      open: async (name) => {
        const e = live.get(name);
        if (e) opened.push(name);
        return e;
      },
      release: (e) => void released.push(e.name),
    };
    const server = createNbdServer({ exports: source });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      assert.notEqual((await run('nbdinfo', [`nbd://127.0.0.1:${port}/view1`])).code, 0);
      live.set('view1', memory('view1'));
      const r = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/view1`]);
      assert.equal(r.stdout.trim(), '8192', describeRun(r));

      const { client } = await RawNbdClient.open(port, 'view1');
      live.delete('view1');
      // An open connection keeps its export after the source dropped it.
      const read = await client.request({ type: 0, offset: 100, length: 4 });
      assert.deepEqual(read.data, Buffer.alloc(4, 7));
      client.sendRequest({ type: 2 });
      await client.closed;
      assert.notEqual((await run('nbdinfo', [`nbd://127.0.0.1:${port}/view1`])).code, 0);
    } finally {
      await server.close();
    }
    await waitFor(() => released.length === opened.length);
    assert.deepEqual([...released].sort(), [...opened].sort());
    assert.ok(opened.length >= 2);
  });

  test('a source that throws is reported as an unknown export', { timeout: 60_000 }, async () => {
    const server = createNbdServer({
      exports: {
        list: () => {
          throw new Error('list broke');
        },
        open: () => Promise.reject(new Error('open broke')),
      },
    });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      const c = await RawNbdClient.connect(port);
      await c.greeting();
      c.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE | ClientFlag.C_NO_ZEROES);
      c.sendOption(NbdOpt.LIST);
      assert.equal((await c.readOptionReply()).type, NbdRep.ERR_POLICY);
      c.sendOption(NbdOpt.GO, RawNbdClient.infoRequest('x'));
      assert.equal((await c.readInfoReplies()).final.type, NbdRep.ERR_UNKNOWN);
      c.destroy();
    } finally {
      await server.close();
    }
  });

  test('fixedExports serves what it was given', { timeout: 60_000 }, () => {
    const src = fixedExports([]);
    assert.equal(src.open('x'), undefined);
    assert.equal(src.open(''), undefined);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
