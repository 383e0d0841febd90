/**
 * The fixed newstyle handshake: greeting, client flags, then options until the client picks
 * an export (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) or leaves (NBD_OPT_ABORT).
 */
import type { NbdExport, NbdExportSource } from './export.ts';
import type { NbdLog } from './log.ts';
import {
  ClientFlag,
  EXPORT_NAME_PADDING_BYTES,
  HandshakeFlag,
  MAX_STRING_BYTES,
  NBD_INIT_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NbdInfo,
  NbdOpt,
  NbdRep,
  OPTION_HEADER_BYTES,
  TransmissionFlag,
} from './protocol.ts';

/** Longest option payload read; a longer one ends the connection (nothing legitimate is). */
export const MAX_OPTION_BYTES = 64 * 1024;
/** Block size advertised as preferred: below it a backend may have to read-modify-write. */
export const PREFERRED_BLOCK_BYTES = 4096;

/** The bytes of one connection, as the handshake needs them. */
export interface HandshakeIo {
  /** The next `n` bytes; rejects when the connection ends first. */
  read(n: number): Promise<Buffer>;
  write(data: Buffer): void;
}

export interface HandshakeContext {
  source: NbdExportSource;
  log: NbdLog;
  /** Largest read or write length accepted in transmission (advertised as block size max). */
  maxRequestBytes: number;
  /** True once the server is closing: options are refused with NBD_REP_ERR_SHUTDOWN. */
  isShuttingDown(): boolean;
  /** Fields naming the connection in log lines. */
  logFields: Record<string, unknown>;
}

/** The client broke the handshake rules; the only answer is to drop the connection. */
export class HandshakeAbort extends Error {}

/** The transmission flags advertised for `exp`. */
export function transmissionFlagsOf(exp: NbdExport): number {
  let flags = TransmissionFlag.HAS_FLAGS | TransmissionFlag.SEND_FLUSH;
  if (exp.readOnly) flags |= TransmissionFlag.READ_ONLY;
  else {
    flags |= TransmissionFlag.SEND_FUA | TransmissionFlag.SEND_TRIM | TransmissionFlag.SEND_WRITE_ZEROES;
  }
  if (exp.multiConn) flags |= TransmissionFlag.CAN_MULTI_CONN;
  return flags;
}

/**
 * Runs the handshake. Resolves with the export the client chose, or undefined when the client
 * aborted. Rejects with `HandshakeAbort` (or the read's error) when the connection must end.
 */
export async function negotiate(io: HandshakeIo, ctx: HandshakeContext): Promise<NbdExport | undefined> {
  const greeting = Buffer.allocUnsafe(18);
  greeting.writeBigUInt64BE(NBD_INIT_MAGIC, 0);
  greeting.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  greeting.writeUInt16BE(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES, 16);
  io.write(greeting);

  const clientFlags = (await io.read(4)).readUInt32BE(0);
  if ((clientFlags & ~(ClientFlag.C_FIXED_NEWSTYLE | ClientFlag.C_NO_ZEROES)) !== 0) {
    throw new HandshakeAbort(`unknown client flags 0x${clientFlags.toString(16)}`);
  }
  const noZeroes = (clientFlags & ClientFlag.C_NO_ZEROES) !== 0;

  for (;;) {
    const header = await io.read(OPTION_HEADER_BYTES);
    if (header.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) throw new HandshakeAbort('bad option magic');
    const opt = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    if (length > MAX_OPTION_BYTES) throw new HandshakeAbort(`option ${opt} of ${length} bytes`);
    const data = await io.read(length);
    const reply = (type: number, payload?: Buffer) => io.write(optionReply(opt, type, payload));

    if (ctx.isShuttingDown()) {
      if (opt === NbdOpt.ABORT) {
        reply(NbdRep.ACK);
        return undefined;
      }
      if (opt === NbdOpt.EXPORT_NAME) throw new HandshakeAbort('server is shutting down');
      reply(NbdRep.ERR_SHUTDOWN, Buffer.from('server is shutting down'));
      continue;
    }

    switch (opt) {
      case NbdOpt.EXPORT_NAME: {
        const name = data.toString('utf8');
        const exp = await openExport(ctx, name);
        if (!exp) throw new HandshakeAbort(`unknown export ${JSON.stringify(name)}`);
        const answer = Buffer.alloc(10 + (noZeroes ? 0 : EXPORT_NAME_PADDING_BYTES));
        answer.writeBigUInt64BE(BigInt(exp.sizeBytes), 0);
        answer.writeUInt16BE(transmissionFlagsOf(exp), 8);
        io.write(answer);
        return exp;
      }
      case NbdOpt.ABORT:
        reply(NbdRep.ACK);
        return undefined;
      case NbdOpt.LIST: {
        if (length !== 0) {
          reply(NbdRep.ERR_INVALID, Buffer.from('NBD_OPT_LIST takes no data'));
          break;
        }
        let entries;
        try {
          entries = [...(await ctx.source.list())];
        } catch (err) {
          ctx.log.warn('export list failed', { ...ctx.logFields, error: String(err) });
          reply(NbdRep.ERR_POLICY, Buffer.from('export list unavailable'));
          break;
        }
        for (const entry of entries) {
          const name = Buffer.from(entry.name, 'utf8');
          const description = Buffer.from(entry.description ?? '', 'utf8');
          const payload = Buffer.allocUnsafe(4 + name.length + description.length);
          payload.writeUInt32BE(name.length, 0);
          name.copy(payload, 4);
          description.copy(payload, 4 + name.length);
          reply(NbdRep.SERVER, payload);
        }
        reply(NbdRep.ACK);
        break;
      }
      case NbdOpt.INFO:
      case NbdOpt.GO: {
        const request = parseInfoRequest(data);
        if (typeof request === 'string') {
          reply(NbdRep.ERR_INVALID, Buffer.from(request));
          break;
        }
        const exp = await openExport(ctx, request.name);
        if (!exp) {
          reply(NbdRep.ERR_UNKNOWN, Buffer.from(`unknown export ${JSON.stringify(request.name)}`));
          break;
        }
        for (const info of infoReplies(exp, request.infos, ctx.maxRequestBytes)) reply(NbdRep.INFO, info);
        reply(NbdRep.ACK);
        if (opt === NbdOpt.GO) return exp;
        await releaseExport(ctx, exp);
        break;
      }
      default:
        // STARTTLS, STRUCTURED_REPLY, metadata contexts, extended headers and anything newer.
        reply(NbdRep.ERR_UNSUP, Buffer.from(`option ${opt} is not supported`));
    }
  }
}

/** An option reply: magic, option, type, length, payload. */
export function optionReply(opt: number, type: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(20 + length);
  out.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  out.writeUInt32BE(opt, 8);
  out.writeUInt32BE(type, 12);
  out.writeUInt32BE(length, 16);
  payload?.copy(out, 20);
  return out;
}

interface InfoRequest {
  name: string;
  infos: Set<number>;
}

/** Parses NBD_OPT_INFO / NBD_OPT_GO data, or says why it is invalid. */
function parseInfoRequest(data: Buffer): InfoRequest | string {
  if (data.length < 6) return 'option data shorter than 6 bytes';
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - 6) return 'export name longer than the option';
  if (nameBytes > MAX_STRING_BYTES) return 'export name longer than 4096 bytes';
  const count = data.readUInt16BE(4 + nameBytes);
  if (data.length !== 6 + nameBytes + 2 * count) return 'information request count does not match the option length';
  const infos = new Set<number>();
  for (let i = 0; i < count; i++) infos.add(data.readUInt16BE(6 + nameBytes + 2 * i));
  return { name: data.toString('utf8', 4, 4 + nameBytes), infos };
}

/** NBD_REP_INFO payloads: the export always, name and description on request, block sizes always. */
function infoReplies(exp: NbdExport, requested: Set<number>, maxRequestBytes: number): Buffer[] {
  const out: Buffer[] = [];
  const info = Buffer.allocUnsafe(12);
  info.writeUInt16BE(NbdInfo.EXPORT, 0);
  info.writeBigUInt64BE(BigInt(exp.sizeBytes), 2);
  info.writeUInt16BE(transmissionFlagsOf(exp), 10);
  out.push(info);
  if (requested.has(NbdInfo.NAME)) out.push(typedString(NbdInfo.NAME, exp.name));
  if (requested.has(NbdInfo.DESCRIPTION) && exp.description) {
    out.push(typedString(NbdInfo.DESCRIPTION, exp.description));
  }
  // Sent even unrequested (clients ignore what they did not ask for): a client that reads it
  // keeps its requests within the limit instead of meeting EINVAL.
  const sizes = Buffer.allocUnsafe(14);
  sizes.writeUInt16BE(NbdInfo.BLOCK_SIZE, 0);
  sizes.writeUInt32BE(1, 2);
  sizes.writeUInt32BE(PREFERRED_BLOCK_BYTES, 6);
  sizes.writeUInt32BE(maxRequestBytes, 10);
  out.push(sizes);
  return out;
}

function typedString(type: number, s: string): Buffer {
  const text = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(type, 0);
  text.copy(out, 2);
  return out;
}

/** Asks the source for an export; a failing or inconsistent source counts as "no such export". */
async function openExport(ctx: HandshakeContext, name: string): Promise<NbdExport | undefined> {
  let exp: NbdExport | undefined;
  try {
    exp = await ctx.source.open(name);
  } catch (err) {
    ctx.log.warn('export open failed', { ...ctx.logFields, export: name, error: String(err) });
    return undefined;
  }
  if (exp && !(Number.isSafeInteger(exp.sizeBytes) && exp.sizeBytes >= 0)) {
    ctx.log.warn('export has an invalid size', { ...ctx.logFields, export: name, sizeBytes: exp.sizeBytes });
    await releaseExport(ctx, exp);
    return undefined;
  }
  return exp;
}

/** Hands an export back to its source; a failure is logged, never thrown. */
export async function releaseExport(
  ctx: Pick<HandshakeContext, 'source' | 'log' | 'logFields'>,
  exp: NbdExport,
): Promise<void> {
  try {
    await ctx.source.release?.(exp);
  } catch (err) {
    ctx.log.warn('export release failed', { ...ctx.logFields, export: exp.name, error: String(err) });
  }
}
