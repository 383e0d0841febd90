import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { FileQueueProvider } from '../../functions/queue/file-queue.ts';
import { queueContract } from './support/queue-contract.ts';

const root = await mkdtemp(join(tmpdir(), 'tidemark-queues-'));
after(() => rm(root, { recursive: true, force: true }));
const provider = await FileQueueProvider.open(join(root, 'shared'), { maxReceiveCount: 2 });

queueContract('embedded directory', { provider: () => provider });

it('keeps messages and their receive counts across a reopen of the directory', async () => {
  const dir = join(root, 'reopen');
  const first = await (await FileQueueProvider.open(dir)).open('site-x');
  await first.send('durable');
  await first.send('second');
  const [m] = await first.receive({ visibilityTimeoutSeconds: 0 });
  assert.equal(m.body, 'durable');

  const again = await (await FileQueueProvider.open(dir)).open('site-x');
  const got = await again.receive({ maxMessages: 10, visibilityTimeoutSeconds: 30 });
  assert.deepEqual(got.map((g) => [g.body, g.receiveCount]), [['durable', 2], ['second', 1]]);
});

it('ends a long poll at once when its signal is aborted before it begins to wait', async () => {
  const q = await (await FileQueueProvider.open(join(root, 'abort'))).open('site-y');
  const stop = new AbortController();
  const started = Date.now();
  const polling = q.receive({ waitSeconds: 20, signal: stop.signal });
  stop.abort();
  await assert.rejects(polling);
  assert.ok(Date.now() - started < 1000);
});
