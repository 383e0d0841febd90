/**
 * The one storage interface of the control plane: a flat namespace of small objects with
 * ETags and conditional writes. Backends: `file-object-store.ts` (a local directory) and
 * `s3-object-store.ts`. Both pass `test/functions/object-store-contract.ts`.
 *
 * Keys are validated by `checkObjectKey` (see docs/control-plane-store.md): slash-separated
 * segments of `[A-Za-z0-9._-]`, never `.` or `..`, at most 512 characters.
 */

/** An object as read: its bytes and the ETag that a later `If-Match` write must quote. */
export interface StoredObject {
  readonly body: Uint8Array;
  readonly etag: string;
}

/** Conditions of a write. At most one of them may be given. */
export interface PutConditions {
  /** Write only if the object's current ETag equals this one (optimistic update). */
  readonly ifMatch?: string;
  /** `'*'`: write only if no object has this key (create once). */
  readonly ifNoneMatch?: '*';
  readonly signal?: AbortSignal;
}

export interface ObjectStore {
  /** The object at `key`, or `undefined` if there is none. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<StoredObject | undefined>;

  /**
   * Writes `body` at `key` atomically: a reader sees the old object or the new one, never a
   * part. Returns the new ETag. Throws `PreconditionFailedError` when a condition fails.
   */
  put(key: string, body: Uint8Array, conditions?: PutConditions): Promise<string>;

  /** Removes the object; removing a missing object is not an error. */
  delete(key: string, options?: { signal?: AbortSignal }): Promise<void>;

  /** Every key that starts with `prefix`, in ascending byte order. */
  list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<string>;
}

const KEY_SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;
/** Longest key accepted, in characters. */
export const MAX_OBJECT_KEY_CHARS = 512;

/** True if `key` is a valid object key (also safe as a relative file path). */
export function isValidObjectKey(key: string): boolean {
  if (key.length === 0 || key.length > MAX_OBJECT_KEY_CHARS) return false;
  return key.split('/').every((s) => KEY_SEGMENT.test(s) && s !== '.' && s !== '..');
}

/** Throws a TypeError unless `key` is valid: keys are built by code, never taken from users. */
export function checkObjectKey(key: string): string {
  if (!isValidObjectKey(key)) throw new TypeError(`invalid object key ${JSON.stringify(key)}`);
  return key;
}

/** Throws unless `prefix` is empty or a valid key prefix (it may end with `/`). */
export function checkObjectPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (!isValidObjectKey(body)) throw new TypeError(`invalid object key prefix ${JSON.stringify(prefix)}`);
  return prefix;
}
