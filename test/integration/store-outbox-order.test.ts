import { expect, it } from 'vitest';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

describeStoreContract('outbox order', ({ store }) => {
  it('concurrent producers: each queue is delivered head by head in its enqueue order', async () => {
    const s: Store = store();
    const queues = ['C1:a', 'C1:b', 'C2:a'];
    // Three producers at once, each enqueuing its queue's rows one after another (some inside
    // a transaction with a message, as posts are).
    const enqueued = new Map<string, number[]>();
    await Promise.all(
      queues.map(async (queueKey) => {
        const ids: number[] = [];
        for (let i = 0; i < 15; i += 1) {
          const insert = async () => {
            const ref = await s.createMessage({ channel: queueKey.slice(0, 2), threadRef: null, now: i });
            return s.insertOutbox({
              channel: queueKey.slice(0, 2),
              queueKey,
              op: 'post',
              messageRef: ref,
              threadRef: null,
              user: null,
              payload: JSON.stringify({ queueKey, i }),
              now: i,
            });
          };
          ids.push(i % 3 === 0 ? await s.atomically(insert) : await insert());
        }
        enqueued.set(queueKey, ids);
      }),
    );
    const delivered = new Map<string, number[]>();
    for (let heads = await s.pendingHeads(); heads.length > 0; heads = await s.pendingHeads()) {
      // Heads come in global enqueue order, one per queue.
      expect(heads.map((h) => h.seq)).toEqual([...heads.map((h) => h.seq)].sort((x, y) => x - y));
      expect(new Set(heads.map((h) => h.queueKey)).size).toBe(heads.length);
      for (const head of heads) {
        delivered.set(head.queueKey, [...(delivered.get(head.queueKey) ?? []), head.id]);
        await s.markPosted(head.id, `ts-${head.id}`, 100);
      }
    }
    for (const queueKey of queues) expect(delivered.get(queueKey)).toEqual(enqueued.get(queueKey));
    expect(await s.outboxCounts()).toEqual({ pending: 0, sent: 45, failed: 0, oldestPendingCreatedAt: null });
  });

  it('keeps an upload like a post: in its thread queue after the earlier replies, sent without a ts', async () => {
    const s: Store = store();
    const root = await s.createMessage({ channel: 'C1', threadRef: null, now: 1 });
    await s.markPosted(
      await s.insertOutbox({
        channel: 'C1',
        queueKey: `C1:${root}`,
        op: 'post',
        messageRef: root,
        threadRef: null,
        user: null,
        payload: '{"text":"root"}',
        now: 1,
      }),
      '1.000001',
      2,
    );
    const row = async (op: 'post' | 'upload', payload: string) =>
      s.insertOutbox({
        channel: 'C1',
        queueKey: `C1:${root}`,
        op,
        messageRef: await s.createMessage({ channel: 'C1', threadRef: root, now: 3 }),
        threadRef: root,
        user: null,
        payload,
        now: 3,
      });
    const reply = await row('post', '{"text":"resolved"}');
    const upload = await row('upload', '{"filename":"report.md"}');
    expect((await s.pendingHeads()).map((h) => [h.id, h.op])).toEqual([[reply, 'post']]);
    await s.markPosted(reply, '1.000002', 4);
    expect((await s.pendingHeads()).map((h) => [h.id, h.op, h.threadRef])).toEqual([
      [upload, 'upload', root],
    ]);
    await s.markSent(upload, 5);
    expect(await s.outboxCounts()).toEqual({ pending: 0, sent: 3, failed: 0, oldestPendingCreatedAt: null });
  });
});
