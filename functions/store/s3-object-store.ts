/**
 * The object store on S3: one object per key under an optional prefix, conditional writes
 * through `If-Match` / `If-None-Match` on PutObject (S3 honours both since 2024).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BackendError, PreconditionFailedError } from '../errors.ts';
import { checkObjectKey, checkObjectPrefix, type ObjectStore, type PutConditions, type StoredObject } from './object-store.ts';

export interface S3ObjectStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Prepended to every key, e.g. `tidemark/`. @default '' */
  readonly keyPrefix?: string;
}

export class S3ObjectStore implements ObjectStore {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(options: S3ObjectStoreOptions) {
    this.#client = options.client;
    this.#bucket = options.bucket;
    this.#prefix = options.keyPrefix ?? '';
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<StoredObject | undefined> {
    const objectKey = this.#prefix + checkObjectKey(key);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: objectKey }),
        { abortSignal: options.signal },
      );
      const body = await out.Body!.transformToByteArray();
      return { body, etag: out.ETag ?? '' };
    } catch (err) {
      if (isStatus(err, 404) || errorName(err) === 'NoSuchKey') return undefined;
      throw backendError(`get of ${key}`, err);
    }
  }

  async put(key: string, body: Uint8Array, conditions: PutConditions = {}): Promise<string> {
    if (conditions.ifMatch !== undefined && conditions.ifNoneMatch !== undefined) {
      throw new TypeError('put takes at most one of ifMatch and ifNoneMatch');
    }
    const objectKey = this.#prefix + checkObjectKey(key);
    try {
      const out = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: objectKey,
          Body: body,
          ContentType: 'application/json',
          IfMatch: conditions.ifMatch,
          IfNoneMatch: conditions.ifNoneMatch,
        }),
        { abortSignal: conditions.signal },
      );
      return out.ETag ?? '';
    } catch (err) {
      // 412: the condition failed; 409 ConditionalRequestConflict: a concurrent conditional
      // write won the race. Both mean: re-read and retry. A 404 on If-Match: no object.
      if (isStatus(err, 412) || isStatus(err, 409) || (conditions.ifMatch !== undefined && isStatus(err, 404))) {
        throw new PreconditionFailedError(key, { cause: err });
      }
      throw backendError(`put of ${key}`, err);
    }
  }

  async delete(key: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const objectKey = this.#prefix + checkObjectKey(key);
    try {
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }),
        { abortSignal: options.signal },
      );
    } catch (err) {
      if (isStatus(err, 404)) return;
      throw backendError(`delete of ${key}`, err);
    }
  }

  async *list(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    checkObjectPrefix(prefix);
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: this.#prefix + prefix, ContinuationToken: token }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw backendError(`list of ${prefix}`, err);
      }
      for (const o of out.Contents ?? []) if (o.Key) yield o.Key.slice(this.#prefix.length);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }
}

function isStatus(err: unknown, status: number): boolean {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode === status
    : (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === status;
}

function errorName(err: unknown): string | undefined {
  return (err as { name?: string })?.name;
}

function backendError(what: string, err: unknown): BackendError {
  return new BackendError(`s3 ${what} failed`, { cause: err, hint: 'check the bucket, its permissions and the network' });
}
