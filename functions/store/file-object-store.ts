/**
 * The embedded object store: one file per object under `<root>/objects`, written by
 * write-then-rename with fsync, with ETag-conditional writes serialised by a per-key lock.
 * One process owns a directory at a time (the local control plane takes `control-plane.lock`).
 *
 * A key `a/b` is stored as the file `objects/a/b@obj`: `@` is not allowed in keys, so an
 * object's file never collides with the directory of a longer key.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PreconditionFailedError } from '../errors.ts';
import { KeyLock } from './key-lock.ts';
import { removeFileDurably, writeFileDurably } from './durable-file.ts';
import { checkObjectKey, checkObjectPrefix, type ObjectStore, type PutConditions, type StoredObject } from './object-store.ts';

const OBJECT_SUFFIX = '@obj';

/** The ETag of a body: its MD5 in quotes, as S3 gives for a single-part upload. */
export function etagOf(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}

export class FileObjectStore implements ObjectStore {
  readonly #objects: string;
  readonly #tmp: string;
  readonly #lock = new KeyLock();

  private constructor(root: string) {
    this.#objects = join(root, 'objects');
    this.#tmp = join(root, 'tmp');
  }

  /** Opens (creating if needed) the store rooted at `root`. */
  static async open(root: string): Promise<FileObjectStore> {
    const store = new FileObjectStore(root);
    await mkdir(store.#objects, { recursive: true, mode: 0o700 });
    await mkdir(store.#tmp, { recursive: true, mode: 0o700 });
    return store;
  }

  #path(key: string): string {
    return join(this.#objects, ...checkObjectKey(key).split('/')) + OBJECT_SUFFIX;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const body = await readIfPresent(this.#path(key));
    return body ? { body, etag: etagOf(body) } : undefined;
  }

  async put(key: string, body: Uint8Array, conditions: PutConditions = {}): Promise<string> {
    const path = this.#path(key);
    if (conditions.ifMatch !== undefined && conditions.ifNoneMatch !== undefined) {
      throw new TypeError('put takes at most one of ifMatch and ifNoneMatch');
    }
    return this.#lock.run(key, async () => {
      if (conditions.ifMatch !== undefined || conditions.ifNoneMatch !== undefined) {
        const current = await readIfPresent(path);
        if (conditions.ifNoneMatch === '*' && current) throw new PreconditionFailedError(key);
        if (conditions.ifMatch !== undefined && (!current || etagOf(current) !== conditions.ifMatch)) {
          throw new PreconditionFailedError(key);
        }
      }
      await writeFileDurably(path, body, this.#tmp);
      return etagOf(body);
    });
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    await this.#lock.run(key, () => removeFileDurably(path));
  }

  async *list(prefix: string): AsyncIterable<string> {
    checkObjectPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    const keys: string[] = [];
    await collectKeys(join(this.#objects, ...(dirKey ? dirKey.split('/') : [])), dirKey, keys);
    keys.sort(compareBytes);
    for (const key of keys) if (key.startsWith(prefix)) yield key;
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

async function collectKeys(dir: string, dirKey: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const e of entries) {
    const childKey = dirKey ? `${dirKey}/${e.name}` : e.name;
    if (e.isDirectory()) await collectKeys(join(dir, e.name), childKey, out);
    else if (e.name.endsWith(OBJECT_SUFFIX)) out.push(childKey.slice(0, -OBJECT_SUFFIX.length));
  }
}

function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
