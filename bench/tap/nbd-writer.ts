/**
 * A minimal NBD client for benchmarks: fixed newstyle handshake with NBD_OPT_EXPORT_NAME,
 * then pipelined WRITE requests, resolving each when its reply arrives.
 */
import { connect, type Socket } from 'node:net';

const IHAVEOPT = 0x49484156454f5054n;
const NBD_OPT_EXPORT_NAME = 1;
const REQUEST_MAGIC = 0x25609513;
const REPLY_MAGIC = 0x67446698;
const CMD_WRITE = 1;
const CMD_DISC = 2;

export class NbdWriter {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly waiting = new Map<bigint, (error: number, cause?: Error) => void>();
  private nextHandle = 1n;
  sizeBytes = 0;

  private constructor(private readonly socket: Socket) {}

  static async connect(host: string, port: number, exportName: string): Promise<NbdWriter> {
    const socket = connect(port, host);
    socket.setNoDelay(true);
    const w = new NbdWriter(socket);
    await w.handshake(exportName);
    socket.on('data', (b: Buffer) => w.onData(b));
    // A server that goes away (killed, say) fails the writes still waiting, not the process.
    socket.on('error', (err) => w.failWaiting(err));
    socket.on('close', () => w.failWaiting(new Error('the NBD connection closed')));
    return w;
  }

  private read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const tryTake = () => {
        if (this.buffered.length >= n) {
          const out = this.buffered.subarray(0, n);
          this.buffered = this.buffered.subarray(n);
          this.socket.off('data', onData);
          this.socket.off('error', reject);
          resolve(Buffer.from(out));
          return true;
        }
        return false;
      };
      const onData = (b: Buffer) => {
        this.buffered = Buffer.concat([this.buffered, b]);
        tryTake();
      };
      if (tryTake()) return;
      this.socket.on('data', onData);
      this.socket.once('error', reject);
    });
  }

  private async handshake(name: string): Promise<void> {
    const hello = await this.read(18);
    if (hello.toString('latin1', 0, 16) !== 'NBDMAGICIHAVEOPT') throw new Error('not a newstyle NBD server');
    const flags = hello.readUInt16BE(16);
    const noZeroes = (flags & 2) !== 0;
    const cflags = Buffer.alloc(4);
    cflags.writeUInt32BE(1 | (noZeroes ? 2 : 0));
    const nameBytes = Buffer.from(name);
    const opt = Buffer.alloc(16);
    opt.writeBigUInt64BE(IHAVEOPT, 0);
    opt.writeUInt32BE(NBD_OPT_EXPORT_NAME, 8);
    opt.writeUInt32BE(nameBytes.length, 12);
    this.socket.write(Buffer.concat([cflags, opt, nameBytes]));
    const info = await this.read(10 + (noZeroes ? 0 : 124));
    this.sizeBytes = Number(info.readBigUInt64BE(0));
  }

  private failWaiting(err: Error): void {
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const done of waiting) done(-1, err);
  }

  private onData(b: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, b]) : b;
    while (this.buffered.length >= 16) {
      if (this.buffered.readUInt32BE(0) !== REPLY_MAGIC) throw new Error('bad reply magic');
      const error = this.buffered.readUInt32BE(4);
      const handle = this.buffered.readBigUInt64BE(8);
      this.buffered = this.buffered.subarray(16);
      const done = this.waiting.get(handle);
      this.waiting.delete(handle);
      done?.(error);
    }
  }

  /** Sends one write; resolves when the server acknowledged it. */
  write(offset: number, data: Buffer): Promise<void> {
    const handle = this.nextHandle++;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(CMD_WRITE, 6);
    req.writeBigUInt64BE(handle, 8);
    req.writeBigUInt64BE(BigInt(offset), 16);
    req.writeUInt32BE(data.length, 24);
    return new Promise((resolve, reject) => {
      this.waiting.set(handle, (error, cause) => (error ? reject(cause ?? new Error(`nbd write error ${error}`)) : resolve()));
      this.socket.cork();
      this.socket.write(req);
      this.socket.write(data);
      this.socket.uncork();
    });
  }

  get inFlight(): number {
    return this.waiting.size;
  }

  /** Sends NBD_CMD_DISC; resolves once the connection is closed. */
  close(): Promise<void> {
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(CMD_DISC, 6);
    const closed = new Promise<void>((resolve) => (this.socket.closed ? resolve() : this.socket.once('close', () => resolve())));
    this.socket.end(req);
    return closed;
  }
}
