/**
 * The contract every QueueProvider backend passes. The factory gives a provider whose queues
 * dead-letter after 2 receives; each case opens queues under a fresh name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueProvider } from '../../../functions/queue/message-queue.ts';

export interface QueueContractOptions {
  /** A provider whose queues have maxReceiveCount 2. */
  readonly provider: () => QueueProvider;
}

let n = 0;
const fresh = () => `contract-${process.pid}-${n++}`;

export function queueContract(name: string, options: QueueContractOptions): void {
  describe(`QueueProvider contract: ${name}`, () => {
    it('delivers a sent message once until it is deleted', async () => {
      const q = await options.provider().open(fresh());
      await q.send('hello');
      const [m, ...rest] = await q.receive({ maxMessages: 10, visibilityTimeoutSeconds: 30 });
      assert.equal(rest.length, 0);
      assert.equal(m.body, 'hello');
      assert.equal(m.receiveCount, 1);
      assert.deepEqual(await q.receive({ visibilityTimeoutSeconds: 30 }), []);
      await q.delete(m.receipt);
      await q.delete(m.receipt);
    });

    it('gives an empty list when nothing is there and the wait is 0', async () => {
      const q = await options.provider().open(fresh());
      assert.deepEqual(await q.receive(), []);
    });

    it('redelivers a message whose visibility timeout passed, counting receives', async () => {
      const q = await options.provider().open(fresh());
      await q.send('again');
      const [first] = await q.receive({ visibilityTimeoutSeconds: 1 });
      assert.equal(first.receiveCount, 1);
      await new Promise((r) => setTimeout(r, 1200));
      const [second] = await q.receive({ visibilityTimeoutSeconds: 30 });
      assert.equal(second.body, 'again');
      assert.equal(second.receiveCount, 2);
      await q.delete(second.receipt);
      assert.deepEqual(await q.receive(), []);
    });

    it('long-polls: a receive waiting for messages returns soon after one is sent', async () => {
      const q = await options.provider().open(fresh());
      const started = Date.now();
      const pending = q.receive({ waitSeconds: 5 });
      setTimeout(() => void q.send('late'), 200);
      const got = await pending;
      assert.equal(got[0]?.body, 'late');
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    });

    it('returns up to maxMessages at once', async () => {
      const q = await options.provider().open(fresh());
      for (let i = 0; i < 5; i++) await q.send(`m${i}`);
      const seen = new Set<string>();
      for (let round = 0; round < 5 && seen.size < 5; round++) {
        for (const m of await q.receive({ maxMessages: 10, visibilityTimeoutSeconds: 30 })) seen.add(m.body);
      }
      assert.deepEqual([...seen].sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
    });

    it('keeps queues apart', async () => {
      const p = options.provider();
      const a = await p.open(fresh());
      const b = await p.open(fresh());
      await a.send('for a');
      assert.deepEqual(await b.receive(), []);
      assert.equal((await a.receive())[0]?.body, 'for a');
    });

    it('dead-letters a message received more than maxReceiveCount times', async () => {
      const p = options.provider();
      const name = fresh();
      const q = await p.open(name);
      await q.send('poison');
      for (let i = 1; i <= 2; i++) {
        const [m] = await q.receive({ visibilityTimeoutSeconds: 1 });
        assert.equal(m?.receiveCount, i);
        await new Promise((r) => setTimeout(r, 1100));
      }
      assert.deepEqual(await q.receive({ visibilityTimeoutSeconds: 30 }), []);
      const dead = await (await p.deadLetters(name)).receive({ waitSeconds: 1 });
      assert.equal(dead[0]?.body, 'poison');
    });

    it('refuses invalid queue names', async () => {
      await assert.rejects(options.provider().open('../etc'), TypeError);
    });
  });
}
