/** The bounded most-recently-used map behind the WAN caches: what it forgets, and when. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LruMap } from '../../core/lru-map.ts';

const kept = <V extends {} | null>(m: LruMap<string, V>, keys: string[]) => keys.filter((k) => m.has(k));

test('beyond maxEntries the least recently set entries go first, in order', () => {
  const m = new LruMap<string, number>({ maxEntries: 3 });
  for (const [i, k] of ['a', 'b', 'c', 'd', 'e'].entries()) m.set(k, i);
  assert.deepEqual(kept(m, ['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
  assert.equal(m.size, 3);
  m.set('f', 5);
  assert.deepEqual(kept(m, ['c', 'd', 'e', 'f']), ['d', 'e', 'f'], 'c was the oldest');
});

test('get counts as a use, has does not', () => {
  const m = new LruMap<string, number>({ maxEntries: 3 });
  m.set('a', 1);
  m.set('b', 2);
  m.set('c', 3);
  assert.equal(m.get('a'), 1);
  assert.ok(m.has('b'));
  m.set('d', 4);
  assert.deepEqual(kept(m, ['a', 'b', 'c', 'd']), ['a', 'c', 'd'], 'b went: has() did not refresh it, get() refreshed a');
  assert.equal(m.get('b'), undefined);
});

test('setting a kept key replaces its value and makes it the newest', () => {
  const m = new LruMap<string, number>({ maxEntries: 2 });
  m.set('a', 1);
  m.set('b', 2);
  m.set('a', 10);
  assert.equal(m.size, 2);
  m.set('c', 3);
  assert.deepEqual(kept(m, ['a', 'b', 'c']), ['a', 'c']);
  assert.equal(m.get('a'), 10);
});

test('delete forgets one key and frees its place', () => {
  const m = new LruMap<string, number>({ maxEntries: 2 });
  m.set('a', 1);
  m.set('b', 2);
  assert.equal(m.delete('a'), true);
  assert.equal(m.delete('a'), false, 'already gone');
  assert.equal(m.get('a'), undefined);
  m.set('c', 3);
  assert.deepEqual(kept(m, ['b', 'c']), ['b', 'c'], 'room for c without evicting b');
});

test('by bytes: the oldest uses go until the new value fits; bytes follow every change', () => {
  const m = new LruMap<string, Buffer>({ maxBytes: 300, bytesOf: (b) => b.length });
  m.set('a', Buffer.alloc(100));
  m.set('b', Buffer.alloc(100));
  m.set('c', Buffer.alloc(100));
  assert.equal(m.bytes, 300);
  m.get('a');
  m.set('d', Buffer.alloc(150));
  assert.deepEqual(kept(m, ['a', 'b', 'c', 'd']), ['a', 'd'], 'b then c went (oldest uses) to make room for 150 bytes');
  assert.equal(m.bytes, 250);
  m.delete('a');
  assert.equal(m.bytes, 150);
});

test('overwriting a key with a value of another size counts the new size, and may evict others', () => {
  const m = new LruMap<string, Buffer>({ maxBytes: 300, bytesOf: (b) => b.length });
  m.set('a', Buffer.alloc(100));
  m.set('b', Buffer.alloc(100));
  m.set('a', Buffer.alloc(50));
  assert.equal(m.bytes, 150, 'the old 100 bytes of a no longer count');
  m.set('a', Buffer.alloc(250));
  assert.deepEqual(kept(m, ['a', 'b']), ['a'], 'b, now the oldest, made room');
  assert.equal(m.bytes, 250);
});

test('a value larger than maxBytes is not kept, evicts nothing, and the key\'s old value goes', () => {
  const m = new LruMap<string, Buffer>({ maxBytes: 300, bytesOf: (b) => b.length });
  m.set('a', Buffer.alloc(100));
  m.set('b', Buffer.alloc(100));
  assert.equal(m.set('huge', Buffer.alloc(301)), false);
  assert.deepEqual(kept(m, ['a', 'b', 'huge']), ['a', 'b']);
  assert.equal(m.set('a', Buffer.alloc(301)), false);
  assert.equal(m.get('a'), undefined, 'a stale value is not left under the key');
  assert.equal(m.bytes, 100);
  assert.equal(m.set('c', Buffer.alloc(200)), true);
});

test('both bounds at once: whichever is exceeded evicts', () => {
  const m = new LruMap<string, Buffer>({ maxEntries: 2, maxBytes: 300, bytesOf: (b) => b.length });
  m.set('a', Buffer.alloc(10));
  m.set('b', Buffer.alloc(10));
  m.set('c', Buffer.alloc(10));
  assert.deepEqual(kept(m, ['a', 'b', 'c']), ['b', 'c'], 'by count');
  m.set('d', Buffer.alloc(295));
  assert.deepEqual(kept(m, ['b', 'c', 'd']), ['d'], 'b by count, then c by bytes (10 + 295 > 300)');
});

test('falsy values are kept and found like any other', () => {
  const m = new LruMap<string, number | null>({ maxEntries: 2 });
  m.set('zero', 0);
  m.set('null', null);
  assert.equal(m.get('null'), null);
  assert.equal(m.get('zero'), 0);
  m.set('x', 1);
  assert.deepEqual(kept(m, ['zero', 'null', 'x']), ['zero', 'x'], 'get found zero and refreshed it after null');
});

test('maxEntries below 1 keeps nothing; a map needs some bound', () => {
  const m = new LruMap<string, number>({ maxEntries: 0 });
  assert.equal(m.set('a', 1), false);
  assert.equal(m.size, 0);
  assert.throws(() => new LruMap<string, number>({}), TypeError);
  assert.throws(() => new LruMap<string, number>({ maxBytes: 10 }), TypeError);
});
