/**
 * The contract every ObjectStore backend passes. Each backend's test file calls
 * `objectStoreContract` with a factory that gives a fresh, empty store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ObjectStore } from '../../../functions/store/object-store.ts';
import { PreconditionFailedError } from '../../../functions/errors.ts';

export interface ObjectStoreContractOptions {
  /** Gives a fresh, empty store. */
  readonly open: () => Promise<ObjectStore>;
  /** A reason to skip the conditional-write cases (the backend under test ignores them), or false. */
  readonly skipConditional: string | false;
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const k of store.list(prefix)) out.push(k);
  return out;
}

export function objectStoreContract(name: string, options: ObjectStoreContractOptions): void {
  describe(`ObjectStore contract: ${name}`, () => {
    it('reads back what it wrote, with the ETag the write returned', async () => {
      const store = await options.open();
      const etag = await store.put('a/b.json', text('{"x":1}'));
      const got = await store.get('a/b.json');
      assert.ok(got);
      assert.equal(str(got.body), '{"x":1}');
      assert.equal(got.etag, etag);
    });

    it('gives undefined for a missing key', async () => {
      const store = await options.open();
      assert.equal(await store.get('missing/key.json'), undefined);
    });

    it('replaces an object and changes its ETag', async () => {
      const store = await options.open();
      const first = await store.put('k.json', text('one'));
      const second = await store.put('k.json', text('two'));
      assert.notEqual(first, second);
      assert.equal(str((await store.get('k.json'))!.body), 'two');
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      const store = await options.open();
      await store.put('d/x.json', text('x'));
      await store.delete('d/x.json');
      assert.equal(await store.get('d/x.json'), undefined);
      await store.delete('d/x.json');
    });

    it('lists keys under a prefix in ascending order, including nested keys', async () => {
      const store = await options.open();
      for (const k of ['p/b', 'p/a', 'p/c/d', 'q/a', 'p', 'pa/x']) await store.put(k, text(k));
      assert.deepEqual(await keys(store, 'p/'), ['p/a', 'p/b', 'p/c/d']);
      assert.deepEqual(await keys(store, 'p'), ['p', 'p/a', 'p/b', 'p/c/d', 'pa/x']);
      assert.deepEqual(await keys(store, 'p/c/'), ['p/c/d']);
      assert.deepEqual(await keys(store, 'zzz/'), []);
    });

    it('keeps an object and a longer key under it apart', async () => {
      const store = await options.open();
      await store.put('x', text('short'));
      await store.put('x/y', text('long'));
      assert.equal(str((await store.get('x'))!.body), 'short');
      assert.equal(str((await store.get('x/y'))!.body), 'long');
    });

    it('refuses keys that could escape the namespace', async () => {
      const store = await options.open();
      for (const bad of ['../x', 'a/../b', '/abs', 'a//b', 'sp ace', '']) {
        await assert.rejects(store.put(bad, text('x')), TypeError, bad);
      }
    });

    describe('conditional writes', { skip: options.skipConditional }, () => {
      it('If-None-Match * creates once and then fails', async () => {
        const store = await options.open();
        await store.put('c/once', text('1'), { ifNoneMatch: '*' });
        await assert.rejects(store.put('c/once', text('2'), { ifNoneMatch: '*' }), PreconditionFailedError);
        assert.equal(str((await store.get('c/once'))!.body), '1');
      });

      it('If-Match writes only over the ETag it names', async () => {
        const store = await options.open();
        const e1 = await store.put('c/m', text('1'));
        const e2 = await store.put('c/m', text('2'), { ifMatch: e1 });
        await assert.rejects(store.put('c/m', text('3'), { ifMatch: e1 }), PreconditionFailedError);
        assert.equal(str((await store.get('c/m'))!.body), '2');
        await store.put('c/m', text('4'), { ifMatch: e2 });
      });

      it('If-Match on a missing key fails', async () => {
        const store = await options.open();
        await assert.rejects(store.put('c/none', text('1'), { ifMatch: '"0123"' }), PreconditionFailedError);
      });

      it('of concurrent If-None-Match creates, exactly one wins', async () => {
        const store = await options.open();
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => store.put('c/race', text(String(i)), { ifNoneMatch: '*' })),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      });
    });
  });
}
