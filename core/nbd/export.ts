/**
 * What the NBD server asks of a backend: one `NbdExport` per served disk, found by name
 * through an `NbdExportSource` each time a client asks, so exports can come and go while
 * the server runs.
 */

/** Something that may finish now or later; the server does not await plain values. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One disk served over NBD.
 *
 * Contract, for every method:
 * - The server has already checked the range: `offset + length <= sizeBytes`, `length` at
 *   most the server's `maxRequestBytes` for read and write, and no write-like call reaches a
 *   `readOnly` export.
 * - Calls for one connection start in the order its requests arrived; a method that returns
 *   a promise may overlap with calls for later requests (up to the server's
 *   `maxInFlightPerConnection`). Clients order dependent requests themselves.
 * - Returning (or resolving) means the operation is done and visible to every later read on
 *   every connection. With `fua` true it must also be on stable storage.
 * - Throwing (or rejecting) sends an error reply: the errno of an `NbdError`, ENOSPC, EPERM
 *   or EINVAL for the host errors of that meaning, EIO for anything else. The connection
 *   stays open.
 *
 * @example
 * const disk: NbdExport = {
 *   name: 'disk0', sizeBytes: 1 << 20, readOnly: false,
 *   read: (offset, length) => Buffer.from(bytes.subarray(offset, offset + length)),
 *   write: (offset, data) => { data.copy(bytes, offset); },
 *   flush: () => {},
 *   trim: (offset, length) => { bytes.fill(0, offset, offset + length); },
 *   writeZeroes: (offset, length) => { bytes.fill(0, offset, offset + length); },
 * };
 */
export interface NbdExport {
  /** Name a client asks for (`nbd://host:port/NAME`); at most 4096 bytes of UTF-8. */
  readonly name: string;
  /** Free text shown by `nbdinfo --list`. */
  readonly description?: string;
  /** Size of the disk in bytes; read when a client opens the export. */
  readonly sizeBytes: number;
  /** Refuse every write-like request with EPERM and advertise NBD_FLAG_READ_ONLY. */
  readonly readOnly: boolean;
  /**
   * True when a flush or FUA reply on one connection covers writes replied on every other
   * connection (one shared cache, or none): advertises NBD_FLAG_CAN_MULTI_CONN.
   */
  readonly multiConn?: boolean;

  /**
   * Exactly `length` bytes at `offset`; a buffer of another length becomes EIO. The server
   * may send the buffer itself rather than a copy: leave it unchanged afterwards.
   */
  read(offset: number, length: number): MaybePromise<Buffer>;
  /**
   * Optional faster `read`: fills all of `target` with the bytes at `offset`. When present the
   * server uses it instead of `read`, with a buffer it reuses (and sends without copying).
   * `target` must not be used after the call returns or settles.
   */
  readInto?(offset: number, target: Buffer): MaybePromise<void>;
  /**
   * Stores `data` at `offset`. `data` may be a view of the connection's receive buffer:
   * copy it if it must outlive the call.
   */
  write(offset: number, data: Buffer, fua: boolean): MaybePromise<void>;
  /**
   * Optional `write` for a payload that arrived in several pieces of the connection's receive
   * buffer: `parts` (views, in order, `lengthBytes` in all) are handed over as they are rather
   * than first copied into one buffer, for a backend that can write them as they are (writev).
   * The same rules as `write` apply.
   */
  writeParts?(offset: number, parts: Buffer[], lengthBytes: number, fua: boolean): MaybePromise<void>;
  /** Shorter writes go to `write`, in one buffer (from the server's pool); @default 0. */
  readonly writePartsMinBytes?: number;
  /** Makes every write that already returned durable. */
  flush(): MaybePromise<void>;
  /** The range is no longer needed; the backend may discard it or do nothing. */
  trim(offset: number, length: number, fua: boolean): MaybePromise<void>;
  /**
   * The range must read back as zeros. `mayTrim` false is the client's NBD_CMD_FLAG_NO_HOLE:
   * keep the range allocated. It is a hint the backend may ignore.
   */
  writeZeroes(offset: number, length: number, fua: boolean, mayTrim: boolean): MaybePromise<void>;
  /**
   * Optional: finishes work the backend deferred from calls that already returned (e.g. one
   * write of a change log for a burst of requests). The server calls it before any reply
   * leaves, so a reply never overtakes what its call deferred. It must not throw.
   */
  commit?(): void;
}

/** A line of `NBD_OPT_LIST`. */
export interface NbdExportEntry {
  name: string;
  description?: string;
}

/**
 * Where the server finds exports. Called for every option that names an export, so the set
 * may change at any time.
 */
export interface NbdExportSource {
  /** Exports to announce to `NBD_OPT_LIST`. */
  list(): MaybePromise<Iterable<NbdExportEntry>>;
  /**
   * The export called `name` (`''` asks for a default export), or undefined if there is
   * none. Every export returned here is later passed to `release`, once.
   */
  open(name: string): MaybePromise<NbdExport | undefined>;
  /** The connection (or information request) that opened `exp` is done with it. */
  release?(exp: NbdExport): MaybePromise<void>;
}

/**
 * A source over a fixed set of exports; the empty name opens the first one.
 *
 * @example
 * createNbdServer({ exports: fixedExports([await openFileExport('/srv/disk0.img', { name: 'disk0' })]) });
 */
export function fixedExports(exports: Iterable<NbdExport>): NbdExportSource {
  const all = [...exports];
  return {
    list: () => all.map((e) => ({ name: e.name, description: e.description })),
    open: (name) => (name === '' ? all[0] : all.find((e) => e.name === name)),
  };
}
