/**
 * A byte-level NBD client for tests that must send what real clients never do (bad magic,
 * unknown options, out-of-range requests) and see the exact error values.
 */
import { connect, type Socket } from 'node:net';
import { ByteQueue } from '../../core/nbd/byte-queue.ts';
import {
  ClientFlag,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NbdInfo,
  NbdOpt,
  NbdRep,
} from '../../core/nbd/protocol.ts';

export interface OptionReply {
  opt: number;
  type: number;
  data: Buffer;
}

export interface SimpleReply {
  errno: number;
  handle: bigint;
  data: Buffer;
}

export interface RequestSpec {
  type: number;
  flags?: number;
  handle?: bigint;
  offset?: number;
  length?: number;
  payload?: Buffer;
}

export class RawNbdClient {
  readonly closed: Promise<void>;
  private readonly queue = new ByteQueue();
  private waiter: { bytes: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private isClosed = false;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        const w = this.waiter;
        this.waiter = undefined;
        w?.reject(new Error(`connection closed with ${this.queue.length} of ${w.bytes} bytes`));
        resolve();
      }),
    );
  }

  static connect(port: number): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(new RawNbdClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and enters transmission on `name` with NBD_OPT_GO. */
  static async open(port: number, name: string): Promise<{ client: RawNbdClient; sizeBytes: number; flags: number }> {
    const client = await RawNbdClient.connect(port);
    const { sizeBytes, flags } = await client.go(name);
    return { client, sizeBytes, flags };
  }

  get closedNow(): boolean {
    return this.isClosed;
  }

  read(n: number): Promise<Buffer> {
    if (this.queue.length >= n) return Promise.resolve(this.queue.take(n));
    if (this.isClosed) return Promise.reject(new Error(`connection closed with ${this.queue.length} of ${n} bytes`));
    return new Promise((resolve, reject) => (this.waiter = { bytes: n, resolve, reject }));
  }

  private wake(): void {
    const w = this.waiter;
    if (w && this.queue.length >= w.bytes) {
      this.waiter = undefined;
      w.resolve(this.queue.take(w.bytes));
    }
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Reads the 18-byte greeting and returns the handshake flags. */
  async greeting(): Promise<number> {
    const g = await this.read(18);
    if (g.toString('latin1', 0, 8) !== 'NBDMAGIC' || g.toString('latin1', 8, 16) !== 'IHAVEOPT') {
      throw new Error('bad greeting');
    }
    return g.readUInt16BE(16);
  }

  sendClientFlags(flags: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(flags >>> 0, 0);
    this.write(b);
  }

  sendOption(opt: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.allocUnsafe(16);
    h.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
    h.writeUInt32BE(opt, 8);
    h.writeUInt32BE(data.length, 12);
    this.write(Buffer.concat([h, data]));
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = await this.read(20);
    if (h.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw new Error('bad option reply magic');
    const length = h.readUInt32BE(16);
    return { opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(length) };
  }

  /** Data for NBD_OPT_INFO / NBD_OPT_GO. */
  static infoRequest(name: string, infos: number[] = []): Buffer {
    const n = Buffer.from(name, 'utf8');
    const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
    b.writeUInt32BE(n.length, 0);
    n.copy(b, 4);
    b.writeUInt16BE(infos.length, 4 + n.length);
    infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
    return b;
  }

  /** Reads NBD_REP_INFO replies up to the final one. */
  async readInfoReplies(): Promise<{ final: OptionReply; infos: Map<number, Buffer> }> {
    const infos = new Map<number, Buffer>();
    for (;;) {
      const r = await this.readOptionReply();
      if (r.type !== NbdRep.INFO) return { final: r, infos };
      infos.set(r.data.readUInt16BE(0), r.data.subarray(2));
    }
  }

  /** Greeting, client flags (fixed newstyle, no zeroes), NBD_OPT_GO. */
  async go(name: string): Promise<{ sizeBytes: number; flags: number }> {
    await this.greeting();
    this.sendClientFlags(ClientFlag.C_FIXED_NEWSTYLE | ClientFlag.C_NO_ZEROES);
    this.sendOption(NbdOpt.GO, RawNbdClient.infoRequest(name));
    const { final, infos } = await this.readInfoReplies();
    if (final.type !== NbdRep.ACK) throw new Error(`NBD_OPT_GO failed: reply type 0x${final.type.toString(16)}`);
    const exp = infos.get(NbdInfo.EXPORT);
    if (!exp) throw new Error('no NBD_INFO_EXPORT');
    return { sizeBytes: Number(exp.readBigUInt64BE(0)), flags: exp.readUInt16BE(8) };
  }

  sendRequest(r: RequestSpec, magic = NBD_REQUEST_MAGIC): void {
    const h = Buffer.allocUnsafe(28);
    h.writeUInt32BE(magic >>> 0, 0);
    h.writeUInt16BE(r.flags ?? 0, 4);
    h.writeUInt16BE(r.type, 6);
    h.writeBigUInt64BE(r.handle ?? 1n, 8);
    h.writeBigUInt64BE(BigInt(r.offset ?? 0), 16);
    h.writeUInt32BE(r.length ?? r.payload?.length ?? 0, 24);
    this.write(r.payload ? Buffer.concat([h, r.payload]) : h);
  }

  /** Reads one simple reply; `dataBytes` is the payload expected when the reply succeeds. */
  async readSimpleReply(dataBytes = 0): Promise<SimpleReply> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error('bad simple reply magic');
    const errno = h.readUInt32BE(4);
    const data = errno === 0 && dataBytes > 0 ? await this.read(dataBytes) : Buffer.alloc(0);
    return { errno, handle: h.readBigUInt64BE(8), data };
  }

  /** Sends one request and reads its reply. */
  async request(r: RequestSpec): Promise<SimpleReply> {
    this.sendRequest(r);
    return this.readSimpleReply(r.type === 0 ? (r.length ?? 0) : 0);
  }
}
