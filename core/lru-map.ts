/**
 * A map that forgets its least recently used entries beyond a bound: a number of entries, a
 * number of bytes (each value's size told by `bytesOf`), or both. For caches, whose entries may
 * go at any time. A JavaScript Map iterates in insertion order, so moving an entry to the end
 * when it is used keeps the oldest use first: get, set and delete are O(1), eviction O(1) an
 * entry.
 */

export interface LruBounds<V> {
  /** Entries kept at most. */
  maxEntries?: number;
  /** Bytes kept at most, as `bytesOf` counts them. */
  maxBytes?: number;
  /** A value's size in bytes; needed with `maxBytes`. It must not change while the value is kept. */
  bytesOf?: (value: V) => number;
}

/** `V` excludes undefined: `get` answers undefined for a key it does not hold. */
export class LruMap<K, V extends {} | null> {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly byKey = new Map<K, V>();
  private readonly bytesOf: ((value: V) => number) | undefined;
  private usedBytes = 0;

  constructor(bounds: LruBounds<V>) {
    if (bounds.maxEntries === undefined && bounds.maxBytes === undefined) throw new TypeError('an LruMap needs maxEntries or maxBytes');
    if (bounds.maxBytes !== undefined && !bounds.bytesOf) throw new TypeError('an LruMap bounded by bytes needs bytesOf');
    this.maxEntries = bounds.maxEntries ?? Infinity;
    this.maxBytes = bounds.maxBytes ?? Infinity;
    this.bytesOf = bounds.bytesOf;
  }

  /** The value kept for `key`, if any; counts as a use. */
  get(key: K): V | undefined {
    const v = this.byKey.get(key);
    if (v === undefined) return undefined;
    this.byKey.delete(key);
    this.byKey.set(key, v);
    return v;
  }

  /** Whether `key` is kept; does not count as a use. */
  has(key: K): boolean {
    return this.byKey.has(key);
  }

  /**
   * Keeps `value` as the most recently used entry, replacing any value of `key`, then forgets
   * the least recently used entries until the bounds hold. A value larger than `maxBytes` on
   * its own is not kept (false), and the old value of `key` is forgotten all the same: it is
   * no longer the key's value. With `maxEntries` below 1 nothing is kept either.
   */
  set(key: K, value: V): boolean {
    this.delete(key);
    const bytes = this.bytesOf ? this.bytesOf(value) : 0;
    if (bytes > this.maxBytes) return false;
    this.byKey.set(key, value);
    this.usedBytes += bytes;
    while (this.byKey.size > this.maxEntries || this.usedBytes > this.maxBytes) {
      const [oldest, v] = this.byKey.entries().next().value!;
      this.forget(oldest, v);
    }
    // The new entry is the newest, so only a bound that fits no entry at all evicts it.
    return this.maxEntries >= 1;
  }

  /** Forgets `key`; false if it was not kept. */
  delete(key: K): boolean {
    const v = this.byKey.get(key);
    if (v === undefined) return false;
    this.forget(key, v);
    return true;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Bytes of the kept values, as `bytesOf` counts them (0 without it). */
  get bytes(): number {
    return this.usedBytes;
  }

  private forget(key: K, v: V): void {
    this.byKey.delete(key);
    if (this.bytesOf) this.usedBytes -= this.bytesOf(v);
  }
}
