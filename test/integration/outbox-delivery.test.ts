import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Permanent, RateLimited, Retryable } from '../../src/outbox/slack-gateway.js';
import {
  createOutboxRig,
  FakeGateway,
  type GatewayCall,
  ManualClock,
  type OutboxRig,
} from '../unit/outbox-fakes.js';

let dir: string;
let rigs: OutboxRig[] = [];
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okome-outbox-'));
});
afterEach(async () => {
  for (const rig of rigs) {
    // Calls a test left hanging are let through, so stop() returns once they are recorded.
    rig.gateway.releaseAll();
    await rig.deliverer.stop();
    await rig.store.close();
  }
  rigs = [];
  rmSync(dir, { recursive: true, force: true });
});

function open(options: Parameters<typeof createOutboxRig>[0] = {}): OutboxRig {
  const rig = createOutboxRig({ path: join(dir, 'okome.db'), ...options });
  rigs.push(rig);
  return rig;
}

/** A small deterministic PRNG (mulberry32), so the fault pattern is the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const posts = (calls: readonly GatewayCall[]) =>
  calls.filter((c): c is Extract<GatewayCall, { method: 'postMessage' }> => c.method === 'postMessage');

describe('durability', () => {
  it('delivers, in order, what was enqueued before the store was closed without delivering', async () => {
    const first = open();
    const root = await first.outbox.enqueuePost({ channel: 'C1', payload: { text: 'incident 1 on pi-a' } });
    for (let i = 0; i < 5; i++)
      await first.outbox.enqueuePost({ channel: 'C1', threadRef: root, payload: { text: `e${i}` } });
    await first.outbox.enqueuePost({ channel: 'C2', payload: { text: 'other channel' } });
    await first.outbox.enqueueEphemeral({
      channel: 'C1',
      user: 'U1',
      payload: { text: 'usage: /okome status' },
    });
    expect(await first.outbox.pendingCount()).toBe(8);
    await first.store.close(); // never started: the process "died" before sending anything
    rigs = [];

    const second = open();
    second.deliverer.start();
    await second.drain();
    const c1 = posts(second.gateway.calls).filter((c) => c.args.channel === 'C1');
    expect(c1.map((c) => c.args.text)).toEqual(['incident 1 on pi-a', 'e0', 'e1', 'e2', 'e3', 'e4']);
    const rootTs = c1[0]?.ts;
    expect(c1.slice(1).every((c) => c.args.thread_ts === rootTs)).toBe(true);
    expect(second.gateway.texts()).toContain('other channel');
    expect(second.gateway.texts('postEphemeral')).toEqual(['usage: /okome status']);
    expect(await second.outbox.tsOf(root)).toBe(rootTs);
    expect(await second.store.outboxCounts()).toMatchObject({ pending: 0, sent: 8, failed: 0 });
  });

  it('a call in flight when the process died is pending again after a restart (at least once)', async () => {
    const clock = new ManualClock();
    const crashed = open({ clock });
    crashed.gateway.hold(); // Slack never answers this process
    const root = await crashed.outbox.enqueuePost({ channel: 'C1', payload: { text: 'root' } });
    await crashed.outbox.enqueuePost({ channel: 'C1', threadRef: root, payload: { text: 'reply' } });
    crashed.deliverer.start();
    await clock.advance(0);
    expect(crashed.gateway.attempts.map((a) => a.text)).toEqual(['root']);

    // A new process on the same file, the old one gone without a word.
    const restarted = open({ clock, gateway: new FakeGateway(clock) });
    restarted.deliverer.start();
    await restarted.drain();
    expect(restarted.gateway.texts()).toEqual(['root', 'reply']);
  });
});

describe('coalescing', () => {
  it('10 updates while Slack is blocked become one update carrying the last payload', async () => {
    const rig = open();
    rig.deliverer.start();
    const ref = await rig.outbox.enqueuePost({ channel: 'C1', payload: { text: 'running 8 checks…' } });
    await rig.drain();
    const release = rig.gateway.hold();
    await rig.outbox.enqueueUpdate({ messageRef: ref, payload: { text: 'check 1/8 done' } });
    await rig.clock.advance(1000); // the first update is now in flight, stuck
    for (let i = 2; i <= 11; i++) {
      await rig.outbox.enqueueUpdate({
        messageRef: ref,
        payload: {
          text: `check ${i}/8 done`,
          blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `${i}` } }],
        },
      });
    }
    expect(await rig.outbox.pendingCount()).toBe(2); // the stuck one and one coalesced row
    release();
    await rig.drain();
    const updates = rig.gateway.calls.filter((c) => c.method === 'update');
    expect(updates.map((u) => u.args.text)).toEqual(['check 1/8 done', 'check 11/8 done']);
    expect(updates[1]?.args.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: '11' } }]);
  });
});

describe('order and pacing under 429 and 5xx', () => {
  it('after 30 s of 429s and 5xx every message arrives once, in enqueue order per thread, ≤ ~1 post/s/channel', async () => {
    const clock = new ManualClock();
    const rig = open({ clock });
    const random = prng(7);
    const outageEnds = clock.now() + 30_000;
    rig.gateway.fault = () => {
      if (clock.now() >= outageEnds) return undefined;
      const r = random();
      if (r < 0.4) return new RateLimited(1);
      if (r < 0.8) return new Retryable('HTTP 500');
      return undefined;
    };
    rig.deliverer.start();

    // 3 channels × 2 incident threads, each: root, 8 replies, and 5 updates of the root.
    const expected = new Map<string, string[]>(); // root ref → reply texts in enqueue order
    const finalRootText = new Map<string, string>();
    for (let round = 0; round < 8; round++) {
      for (const channel of ['C1', 'C2', 'C3']) {
        for (const incident of ['a', 'b']) {
          const rootName = `${channel}-${incident}`;
          if (round === 0) {
            const ref = await rig.outbox.enqueuePost({ channel, payload: { text: `${rootName} root` } });
            expected.set(ref, []);
            finalRootText.set(ref, `${rootName} root`);
          }
          const ref = [...expected.keys()].find((r) => finalRootText.get(r)?.startsWith(rootName)) ?? '';
          await rig.outbox.enqueuePost({
            channel,
            threadRef: ref,
            payload: { text: `${rootName} reply ${round}` },
          });
          expected.get(ref)?.push(`${rootName} reply ${round}`);
          if (round % 2 === 1) {
            const text = `${rootName} root v${round}`;
            await rig.outbox.enqueueUpdate({ messageRef: ref, payload: { text } });
            finalRootText.set(ref, text);
          }
        }
      }
      await clock.advance(700);
    }
    await rig.drain();

    expect(rig.gateway.attempts.length).toBeGreaterThan(rig.gateway.calls.length); // faults did happen
    const all = posts(rig.gateway.calls);
    expect(all).toHaveLength(6 * 9);
    expect(new Set(all.map((c) => c.args.text)).size).toBe(all.length); // none twice
    for (const [ref, replies] of expected) {
      const rootTs = await rig.outbox.tsOf(ref);
      const thread = all.filter((c) => c.args.thread_ts === rootTs).map((c) => c.args.text);
      expect(thread).toEqual(replies);
      // The root shows its last state, whether folded into the post or sent as an update.
      const lastUpdate = rig.gateway.calls
        .filter((c) => c.method === 'update' && c.args.ts === rootTs)
        .at(-1);
      const rootPost = all.find((c) => c.ts === rootTs);
      expect(lastUpdate?.args.text ?? rootPost?.args.text).toBe(finalRootText.get(ref));
    }
    expect(await rig.store.outboxCounts()).toMatchObject({ pending: 0, failed: 0 });

    // Pacing: at most 3 (the burst) + 1 per elapsed second, over any window, per channel.
    for (const channel of ['C1', 'C2', 'C3']) {
      const times = all.filter((c) => c.args.channel === channel).map((c) => c.at);
      for (let i = 0; i < times.length; i++) {
        for (let j = i; j < times.length; j++) {
          const count = j - i + 1;
          expect(count).toBeLessThanOrEqual(3 + ((times[j] ?? 0) - (times[i] ?? 0)) / 1000);
        }
      }
    }
  });

  it('a thread reply is never sent before its parent has a ts, even when the parent keeps failing', async () => {
    const rig = open();
    let failures = 0;
    rig.gateway.fault = (a) => (a.text === 'root' && failures++ < 5 ? new Retryable('HTTP 502') : undefined);
    rig.deliverer.start();
    const root = await rig.outbox.enqueuePost({ channel: 'C1', payload: { text: 'root' } });
    await rig.outbox.enqueuePost({ channel: 'C1', threadRef: root, payload: { text: 'reply' } });
    await rig.drain();
    const firstReply = rig.gateway.attempts.findIndex((a) => a.text === 'reply');
    const rootSuccess = rig.gateway.attempts.findLastIndex((a) => a.text === 'root');
    expect(firstReply).toBeGreaterThan(rootSuccess);
    expect(posts(rig.gateway.calls)[1]?.args.thread_ts).toBe(await rig.outbox.tsOf(root));
  });
});

describe('permanent errors', () => {
  it('channel_not_found fails that channel’s rows and does not block the other channels', async () => {
    const rig = open();
    rig.gateway.fault = (a) => (a.channel === 'C0GONE' ? new Permanent('channel_not_found') : undefined);
    rig.deliverer.start();
    const gone = await rig.outbox.enqueuePost({ channel: 'C0GONE', payload: { text: 'lost root' } });
    await rig.outbox.enqueuePost({ channel: 'C0GONE', threadRef: gone, payload: { text: 'lost reply' } });
    await rig.outbox.enqueueUpdate({ messageRef: gone, payload: { text: 'lost root v2' } });
    await rig.outbox.enqueuePost({ channel: 'C0GONE', payload: { text: 'lost 2' } });
    const ok = await rig.outbox.enqueuePost({ channel: 'C1', payload: { text: 'fine' } });
    await rig.outbox.enqueuePost({ channel: 'C1', threadRef: ok, payload: { text: 'fine reply' } });
    await rig.drain();
    expect(rig.gateway.texts()).toEqual(['fine', 'fine reply']);
    const stats = await rig.outbox.stats();
    // The root, its reply, its update (queued after the root had left) and the second post.
    expect(stats).toMatchObject({ pending: 0, sent: 2, failed: 4, inFlight: 0 });
  });
});

describe('housekeeping', () => {
  it('prunes old sent rows but keeps every message ts (refs stay resolvable)', async () => {
    const rig = open();
    rig.deliverer.start();
    const root = await rig.outbox.enqueuePost({ channel: 'C1', payload: { text: 'root' } });
    await rig.drain();
    const ts = await rig.outbox.tsOf(root);
    await rig.clock.advance(10_000);
    expect(await rig.store.pruneSentOutbox(rig.clock.now() - 5000)).toBe(1);
    expect(await rig.store.outboxCounts()).toEqual({
      pending: 0,
      sent: 0,
      failed: 0,
      oldestPendingCreatedAt: null,
    });
    expect(await rig.outbox.tsOf(root)).toBe(ts);
    await rig.outbox.enqueuePost({ channel: 'C1', threadRef: root, payload: { text: 'late reply' } });
    await rig.drain();
    expect(posts(rig.gateway.calls).at(-1)?.args.thread_ts).toBe(ts);
  });
});
