/**
 * Numbers of the NBD protocol (NetworkBlockDevice project, doc/proto.md) that this server
 * speaks: fixed newstyle handshake, simple replies. All integers on the wire are big-endian.
 */

/** 'NBDMAGIC': first eight bytes the server sends. */
export const NBD_INIT_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': second eight bytes the server sends, and the start of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Start of every option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
/** Start of every transmission request. */
export const NBD_REQUEST_MAGIC = 0x25609513;
/** Start of every simple reply. */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;

/** Handshake flags (16 bits, server to client). */
export const HandshakeFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

/** Client flags (32 bits, client to server); any other bit ends the connection. */
export const ClientFlag = {
  C_FIXED_NEWSTYLE: 1 << 0,
  C_NO_ZEROES: 1 << 1,
} as const;

/** Option types. */
export const NbdOpt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

const ERR = 0x80000000;

/** Option reply types; errors have bit 31 set. */
export const NbdRep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  ERR_UNSUP: ERR + 1,
  ERR_POLICY: ERR + 2,
  ERR_INVALID: ERR + 3,
  ERR_PLATFORM: ERR + 4,
  ERR_TLS_REQD: ERR + 5,
  ERR_UNKNOWN: ERR + 6,
  ERR_SHUTDOWN: ERR + 7,
  ERR_BLOCK_SIZE_REQD: ERR + 8,
  ERR_TOO_BIG: ERR + 9,
} as const;

/** Information types carried by NBD_REP_INFO. */
export const NbdInfo = {
  EXPORT: 0,
  NAME: 1,
  DESCRIPTION: 2,
  BLOCK_SIZE: 3,
} as const;

/** Transmission flags (16 bits) describing one export. */
export const TransmissionFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
} as const;

/** Request types. */
export const NbdCmd = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

/** Command flags (16 bits, per request). */
export const CmdFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
} as const;

/** Error values of simple replies: the protocol's own numbers, not the host's errno. */
export const NbdErrno = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;
export type NbdErrno = (typeof NbdErrno)[keyof typeof NbdErrno];

/** Bytes of a transmission request header. */
export const REQUEST_HEADER_BYTES = 28;
/** Bytes of a simple reply header. */
export const SIMPLE_REPLY_HEADER_BYTES = 16;
/** Bytes of an option header (magic, option, length). */
export const OPTION_HEADER_BYTES = 16;
/** Bytes of zeros after an NBD_OPT_EXPORT_NAME reply unless the client asked for none. */
export const EXPORT_NAME_PADDING_BYTES = 124;
/** Longest string (export name, description) the protocol allows. */
export const MAX_STRING_BYTES = 4096;
