/**
 * Typed records on the object store. Every object is the envelope `{ v: 1, record }`;
 * readers refuse other versions. `update` is optimistic: read, change, write with If-Match,
 * and retry from the read when another writer won.
 */
import type { z } from '@hono/zod-openapi';
import { BackendError, ConflictError, PreconditionFailedError } from '../errors.ts';
import type { ObjectStore } from '../store/object-store.ts';

export const RECORD_FORMAT_VERSION = 1;
/** Attempts of one optimistic update before it gives up with a ConflictError. */
export const MAX_UPDATE_ATTEMPTS = 8;

export interface Versioned<T> {
  readonly record: T;
  readonly etag: string;
}

export class Repository {
  readonly store: ObjectStore;

  constructor(store: ObjectStore) {
    this.store = store;
  }

  async read<S extends z.ZodType>(key: string, schema: S): Promise<Versioned<z.infer<S>> | undefined> {
    const got = await this.store.get(key);
    if (!got) return undefined;
    return { record: decode(key, got.body, schema), etag: got.etag };
  }

  async get<S extends z.ZodType>(key: string, schema: S): Promise<z.infer<S> | undefined> {
    return (await this.read(key, schema))?.record;
  }

  /** Writes a new record; a ConflictError if the key exists (where the store enforces it). */
  async create<T>(key: string, record: T): Promise<T> {
    try {
      await this.store.put(key, encode(record), { ifNoneMatch: '*' });
    } catch (err) {
      if (err instanceof PreconditionFailedError) throw new ConflictError(`${key} already exists`, { cause: err });
      throw err;
    }
    return record;
  }

  /** Writes a record unconditionally. */
  async put<T>(key: string, record: T): Promise<T> {
    await this.store.put(key, encode(record));
    return record;
  }

  /**
   * Applies `change` to the current record and writes it if nobody wrote in between.
   * `change` may run several times; it must not have side effects. Returns undefined if the
   * record does not exist.
   */
  async update<S extends z.ZodType>(
    key: string,
    schema: S,
    change: (current: z.infer<S>) => z.infer<S>,
  ): Promise<{ before: z.infer<S>; after: z.infer<S> } | undefined> {
    for (let attempt = 1; attempt <= MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = await this.read(key, schema);
      if (!current) return undefined;
      const before = structuredClone(current.record);
      const after = change(current.record);
      try {
        await this.store.put(key, encode(after), { ifMatch: current.etag });
        return { before, after };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
    throw new ConflictError(`${key} kept changing; gave up after ${MAX_UPDATE_ATTEMPTS} attempts`, { hint: 'retry the request' });
  }

  /** Every record under `prefix`, in key order. */
  async list<S extends z.ZodType>(prefix: string, schema: S, options: { limit?: number; newestFirst?: boolean } = {}): Promise<z.infer<S>[]> {
    const found: string[] = [];
    for await (const key of this.store.list(prefix)) found.push(key);
    if (options.newestFirst) found.reverse();
    const wanted = options.limit === undefined ? found : found.slice(0, options.limit);
    const out: z.infer<S>[] = [];
    for (const key of wanted) {
      const r = await this.get(key, schema);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    await this.store.delete(key);
  }
}

function encode(record: unknown): Uint8Array {
  return Buffer.from(JSON.stringify({ v: RECORD_FORMAT_VERSION, record }));
}

function decode<S extends z.ZodType>(key: string, body: Uint8Array, schema: S): z.infer<S> {
  let envelope: { v?: unknown; record?: unknown };
  try {
    envelope = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (err) {
    throw new BackendError(`object ${key} is not valid json`, { cause: err });
  }
  if (envelope.v !== RECORD_FORMAT_VERSION) {
    throw new BackendError(`object ${key} has unknown format version ${String(envelope.v)}`, {
      hint: 'this control plane is older than the data: upgrade it',
    });
  }
  const parsed = schema.safeParse(envelope.record);
  if (!parsed.success) throw new BackendError(`object ${key} does not match its schema`, { cause: parsed.error });
  return parsed.data;
}
