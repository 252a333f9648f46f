import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { permalinkPlaceholder, permalinkTo } from '../../src/outbox/payload.js';
import { Permanent, RateLimited, Retryable } from '../../src/outbox/slack-gateway.js';
import { type FaultyStore, faultyStore } from '../support/faulty-store.js';
import { createOutboxRig, type OutboxRig } from './outbox-fakes.js';

const C1 = 'C0000001';
const C2 = 'C0000002';
const text = (t: string) => ({ text: t });

let rig: OutboxRig | undefined;
function setup(...args: Parameters<typeof createOutboxRig>): OutboxRig {
  rig = createOutboxRig(...args);
  rig.deliverer.start();
  return rig;
}

afterEach(async () => {
  await rig?.deliverer.stop();
  await rig?.store.close();
  rig = undefined;
});

describe('posts are paced per channel', () => {
  it('sends a burst of 3, then one per interval, each channel on its own bucket', async () => {
    const { outbox, gateway, clock, drain } = setup({ pacing: { postIntervalMs: 1000 } });
    const t0 = clock.now();
    for (let i = 0; i < 6; i++) await outbox.enqueuePost({ channel: C1, payload: text(`a${i}`) });
    await outbox.enqueuePost({ channel: C2, payload: text('b0') });
    await drain();
    const offsets = (channel: string) =>
      gateway.calls.filter((c) => c.args.channel === channel).map((c) => c.at - t0);
    expect(offsets(C1)).toEqual([0, 0, 0, 1000, 2000, 3000]);
    expect(offsets(C2)).toEqual([0]);
    expect(gateway.texts()).toContain('b0');
  });

  it('honours a configured interval', async () => {
    const { outbox, gateway, clock, drain } = setup({ pacing: { postIntervalMs: 250, postBurst: 1 } });
    const t0 = clock.now();
    for (let i = 0; i < 4; i++) await outbox.enqueuePost({ channel: C1, payload: text(`a${i}`) });
    await drain();
    expect(gateway.calls.map((c) => c.at - t0)).toEqual([0, 250, 500, 750]);
  });

  it('an urgent post skips 200 queued posts of its channel at once; the channel then repays the token', async () => {
    const { outbox, gateway, clock } = setup({ pacing: { postIntervalMs: 1000 } });
    const t0 = clock.now();
    for (let i = 0; i < 200; i++) await outbox.enqueuePost({ channel: C1, payload: text(`storm ${i}`) });
    await clock.advance(10_000);
    const beforeNotice = gateway.calls.length;
    expect(beforeNotice).toBe(13); // a burst of 3, then one a second
    const enqueuedAt = clock.now();
    await outbox.enqueuePost({ channel: C1, payload: { text: 'VIP moved', urgent: true } });
    await clock.advance(0);
    const notice = gateway.calls.find((c) => c.args.text === 'VIP moved');
    expect(notice?.at).toBe(enqueuedAt);
    expect(gateway.calls.indexOf(notice as never)).toBe(beforeNotice);
    // The flag stays in the outbox: Slack never sees it.
    expect(notice?.args).not.toHaveProperty('urgent');
    // The borrowed token is repaid: 20 s hold one notice and 20 storm posts, not 21.
    await clock.advance(10_000);
    expect(gateway.calls.filter((c) => c.at - t0 <= 20_000)).toHaveLength(3 + 20 + 1 - 1);
  });

  it('an urgent reply skips its thread’s queued replies too', async () => {
    const { outbox, gateway, clock } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    await clock.advance(0);
    for (let i = 0; i < 20; i++)
      await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text(`reply ${i}`) });
    await clock.advance(5000);
    const enqueuedAt = clock.now();
    await outbox.enqueuePost({
      channel: C1,
      threadRef: root,
      payload: { text: 'VIP moved', urgent: true, reply_broadcast: true },
    });
    await clock.advance(0);
    const notice = gateway.calls.find((c) => c.args.text === 'VIP moved');
    expect(notice?.at).toBe(enqueuedAt);
    const first = gateway.calls[0];
    expect(notice?.method === 'postMessage' && notice.args.thread_ts).toBe(
      first?.method === 'postMessage' && first.ts,
    );
    expect(gateway.texts().filter((t) => t.startsWith('reply')).length).toBeLessThan(20);
  });

  it('does not pace ephemerals with posts', async () => {
    const { outbox, gateway, clock, drain } = setup({ pacing: { postBurst: 1 } });
    const t0 = clock.now();
    await outbox.enqueuePost({ channel: C1, payload: text('p0') });
    await outbox.enqueuePost({ channel: C1, payload: text('p1') });
    await outbox.enqueueEphemeral({ channel: C1, user: 'U1', payload: text('only you') });
    await drain();
    const eph = gateway.calls.find((c) => c.method === 'postEphemeral');
    expect(eph?.at).toBe(t0);
    expect(eph?.method === 'postEphemeral' && eph.args.user).toBe('U1');
  });
});

describe('updates coalesce and are paced per message', () => {
  it('folds updates into a post that has not left yet: one post with the latest state', async () => {
    // One post per minute: the second post waits for the bucket while its updates arrive.
    const { outbox, gateway, drain } = setup({ pacing: { postIntervalMs: 60_000, postBurst: 1 } });
    await outbox.enqueuePost({ channel: C1, payload: text('first') });
    const ref = await outbox.enqueuePost({
      channel: C1,
      payload: { text: 'running 0/10', reply_broadcast: false },
    });
    for (let i = 1; i <= 10; i++)
      await outbox.enqueueUpdate({ messageRef: ref, payload: text(`running ${i}/10`) });
    await drain();
    expect(gateway.calls.map((c) => [c.method, c.args.text])).toEqual([
      ['postMessage', 'first'],
      ['postMessage', 'running 10/10'],
    ]);
  });

  it('while the post is in flight, later updates collapse into one update sent after it', async () => {
    const { outbox, gateway, clock, drain } = setup();
    const release = gateway.hold();
    const ref = await outbox.enqueuePost({ channel: C1, payload: text('v0') });
    await clock.advance(0);
    expect(gateway.attempts).toHaveLength(1);
    for (let i = 1; i <= 10; i++) await outbox.enqueueUpdate({ messageRef: ref, payload: text(`v${i}`) });
    expect(await outbox.pendingCount()).toBe(2);
    release();
    await drain();
    expect(gateway.calls.map((c) => [c.method, c.args.text])).toEqual([
      ['postMessage', 'v0'],
      ['update', 'v10'],
    ]);
    const [post, update] = gateway.calls;
    expect(update?.method === 'update' && post?.method === 'postMessage' && update.args.ts === post.ts).toBe(
      true,
    );
  });

  it('sends at most one update per message per second, newest state winning', async () => {
    const { outbox, gateway, clock, drain } = setup();
    const ref = await outbox.enqueuePost({ channel: C1, payload: text('v0') });
    await clock.advance(0);
    const t0 = clock.now();
    // 30 updates over 3 s, every 100 ms.
    for (let i = 1; i <= 30; i++) {
      await outbox.enqueueUpdate({ messageRef: ref, payload: text(`v${i}`) });
      await clock.advance(100);
    }
    await drain();
    const updates = gateway.calls.filter((c) => c.method === 'update');
    const gaps = updates.slice(1).map((u, i) => u.at - (updates[i]?.at ?? 0));
    expect(updates.length).toBeLessThanOrEqual(4);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000);
    expect(updates[0]?.at).toBe(t0 + 1000);
    expect(updates.at(-1)?.args.text).toBe('v30');
  });

  it('keeps the post options when an update is merged into the post', async () => {
    const { outbox, gateway, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    const reply = await outbox.enqueuePost({
      channel: C1,
      threadRef: root,
      payload: { text: 'r', reply_broadcast: true, unfurl_links: false },
    });
    await outbox.enqueueUpdate({ messageRef: reply, payload: { text: 'r2', blocks: [{ type: 'divider' }] } });
    await drain();
    const posted = gateway.calls[1];
    expect(posted?.method).toBe('postMessage');
    expect(posted?.args).toMatchObject({
      text: 'r2',
      blocks: [{ type: 'divider' }],
      reply_broadcast: true,
      unfurl_links: false,
    });
  });
});

describe('threads', () => {
  it('sends a reply only after its parent has a ts, with that ts', async () => {
    const { outbox, gateway, clock, drain } = setup();
    const release = gateway.hold();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('evidence') });
    await clock.advance(5000);
    expect(gateway.attempts.map((a) => a.text)).toEqual(['root']);
    release();
    await drain();
    const [parent, reply] = gateway.calls;
    expect(parent?.method === 'postMessage' && reply?.method === 'postMessage').toBe(true);
    if (parent?.method !== 'postMessage' || reply?.method !== 'postMessage') return;
    expect(reply.args.thread_ts).toBe(parent.ts);
    expect(await outbox.tsOf(root)).toBe(parent.ts);
  });

  it('replies to a reply go to the root thread', async () => {
    const { outbox, gateway, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    const r1 = await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('r1') });
    await outbox.enqueuePost({ channel: C1, threadRef: r1, payload: text('r2') });
    await drain();
    const rootTs = await outbox.tsOf(root);
    const threadTs = gateway.calls.map((c) => (c.method === 'postMessage' ? c.args.thread_ts : undefined));
    expect(threadTs).toEqual([undefined, rootTs, rootTs]);
  });

  it('refuses unknown refs and cross-channel threads with a coded error', async () => {
    const { outbox, store } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    const codeOf = async (fn: () => Promise<unknown>): Promise<string | undefined> => {
      try {
        await fn();
      } catch (error) {
        return isOkomeError(error) ? error.code : 'not an OkomeError';
      }
      return undefined;
    };
    expect(await codeOf(() => outbox.enqueueUpdate({ messageRef: 'm-nope', payload: text('x') }))).toBe(
      ErrorCode.OutboxUnknownMessage,
    );
    expect(
      await codeOf(() => outbox.enqueuePost({ channel: C1, threadRef: 'm-nope', payload: text('x') })),
    ).toBe(ErrorCode.OutboxUnknownMessage);
    expect(await codeOf(() => outbox.enqueuePost({ channel: C2, threadRef: root, payload: text('x') }))).toBe(
      ErrorCode.OutboxUnknownMessage,
    );
    // Nothing was enqueued by the refused calls: the root is the only row.
    const counts = await store.outboxCounts();
    expect(counts.pending + counts.sent + counts.failed).toBe(1);
  });
});

describe('failures', () => {
  it('429 pauses the channel for Retry-After plus jitter, then retries in order; other channels go on', async () => {
    const { outbox, gateway, clock, drain } = setup();
    const t0 = clock.now();
    let limited = false;
    gateway.fault = (a) => {
      if (a.channel === C1 && !limited) {
        limited = true;
        return new RateLimited(2);
      }
      return undefined;
    };
    await outbox.enqueuePost({ channel: C1, payload: text('a0') });
    await outbox.enqueuePost({ channel: C1, payload: text('a1') });
    await outbox.enqueuePost({ channel: C2, payload: text('b0') });
    await clock.advance(0);
    expect((await outbox.stats()).pausedChannels).toEqual([{ channel: C1, until: t0 + 2125 }]);
    await drain();
    const c1 = gateway.calls.filter((c) => c.args.channel === C1);
    expect(c1.map((c) => c.args.text)).toEqual(['a0', 'a1']);
    // 2 s + 250 ms × random(0.5); a1 (another queue) waited: one post in flight per channel.
    expect(c1.map((c) => c.at - t0)).toEqual([2125, 2125]);
    expect(gateway.calls.find((c) => c.args.text === 'b0')?.at).toBe(t0);
  });

  it('Retryable backs off exponentially on that queue only, forever, keeping its order', async () => {
    // A generous bucket, so post pacing does not stretch the backoff steps measured here.
    const { outbox, gateway, clock, drain, store } = setup({ pacing: { postIntervalMs: 1, postBurst: 10 } });
    const t0 = clock.now();
    let failures = 0;
    gateway.fault = (a) => (a.text === 'a0' && failures++ < 8 ? new Retryable('HTTP 503') : undefined);
    const root = await outbox.enqueuePost({ channel: C1, payload: text('a0') });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('a1') });
    await outbox.enqueuePost({ channel: C1, payload: text('other thread') });
    await drain();
    const tries = gateway.attempts.filter((a) => a.text === 'a0').map((a) => a.at - t0);
    // Delays with random 0.5 are 3/4 of 250·2^n, capped at 30 s: 188, 375, 750, 1500, 3000, 6000, 12000, 22500.
    const gaps = tries.slice(1).map((t, i) => t - (tries[i] ?? 0));
    expect(gaps).toEqual([188, 375, 750, 1500, 3000, 6000, 12_000, 22_500]);
    expect(gateway.calls.find((c) => c.args.text === 'other thread')?.at).toBe(t0);
    expect(gateway.texts().filter((t) => t !== 'other thread')).toEqual(['a0', 'a1']);
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, sent: 3, failed: 0 });
  });

  it('treats an unclassified error as retryable', async () => {
    const { outbox, gateway, drain } = setup();
    let thrown = false;
    gateway.fault = () => {
      if (thrown) return undefined;
      thrown = true;
      return new TypeError('socket hang up');
    };
    await outbox.enqueuePost({ channel: C1, payload: text('x') });
    await drain();
    expect(gateway.texts()).toEqual(['x']);
  });

  it('a Permanent error fails the row and its thread replies, and blocks nobody else', async () => {
    const { outbox, gateway, drain, store } = setup();
    gateway.fault = (a) => (a.text.startsWith('bad root') ? new Permanent('invalid_blocks') : undefined);
    const bad = await outbox.enqueuePost({ channel: C1, payload: text('bad root') });
    await outbox.enqueuePost({ channel: C1, threadRef: bad, payload: text('orphan reply') });
    await outbox.enqueueUpdate({ messageRef: bad, payload: text('bad root v2') });
    const good = await outbox.enqueuePost({ channel: C1, payload: text('good root') });
    await outbox.enqueuePost({ channel: C1, threadRef: good, payload: text('good reply') });
    await drain();
    expect(gateway.texts()).toEqual(['good root', 'good reply']);
    // The post, its reply and its update (queued after the post had left) failed.
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, sent: 2, failed: 3 });
    expect(await outbox.stats()).toMatchObject({ failed: 3, pending: 0, inFlight: 0 });
    expect(gateway.attempts.filter((a) => a.text === 'orphan reply')).toEqual([]);
  });

  it('logs a permanent failure with its Slack code and the row', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => lines.push(JSON.parse(l)) },
    });
    const { outbox, gateway, drain } = setup({ logger });
    gateway.fault = () => new Permanent('msg_too_long');
    const ref = await outbox.enqueuePost({ channel: C1, payload: text('x'.repeat(50)) });
    await drain();
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        component: 'outbox',
        code: 'msg_too_long',
        messageRef: ref,
        channel: C1,
        msg: 'outbox: Slack call failed for good; moving on',
      }),
    );
  });

  it('an update whose message is gone fails and the thread continues', async () => {
    const { outbox, gateway, clock, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    await clock.advance(0);
    gateway.fault = (a) => (a.method === 'update' ? new Permanent('message_not_found') : undefined);
    await outbox.enqueueUpdate({ messageRef: root, payload: text('root v2') });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('reply') });
    await drain();
    expect(gateway.texts()).toEqual(['root', 'reply']);
  });

  it('a post Slack took while the store could not record it is recorded later, not sent again; its thread follows', async () => {
    let faulty: FaultyStore | undefined;
    const { outbox, gateway, drain, store } = setup({
      storePort: (s) => {
        faulty = faultyStore(s);
        return faulty.store;
      },
    });
    // The store goes away for the first two tries to record a post (PostgreSQL restarting).
    let refusals = 2;
    faulty?.setFailWhen((call) => call.method === 'markPosted' && refusals-- > 0);
    const root = await outbox.enqueuePost({ channel: C1, payload: text('root') });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('reply') });
    await drain();
    expect(faulty?.failures.map((f) => f.method)).toEqual(['markPosted', 'markPosted']);
    expect(gateway.texts()).toEqual(['root', 'reply']);
    // The reply went into the root's thread: the ts Slack gave the one post, recorded late.
    const [rootCall, replyCall] = gateway.calls;
    const rootTs = rootCall?.method === 'postMessage' ? rootCall.ts : undefined;
    expect(rootTs).toBeDefined();
    expect(replyCall?.method === 'postMessage' ? replyCall.args.thread_ts : undefined).toBe(rootTs);
    expect((await store.message(root))?.ts).toBe(rootTs);
  });

  it('flush gives up after its timeout while Slack is down, and nothing is lost', async () => {
    const { outbox, gateway, clock, deliverer, drain } = setup();
    gateway.fault = () => new Retryable('down');
    await outbox.enqueuePost({ channel: C1, payload: text('x') });
    let result: boolean | undefined;
    void deliverer.flush(10_000).then((r) => {
      result = r;
    });
    await clock.advance(10_000);
    expect(result).toBe(false);
    expect(await outbox.pendingCount()).toBe(1);
    gateway.fault = undefined;
    await drain();
    expect(gateway.texts()).toEqual(['x']);
  });
});

describe('permalinks of other messages', () => {
  const linking = (ref: string, body: string) => ({
    text: `${body} ${permalinkPlaceholder(ref)}`,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: `Thread: ${permalinkPlaceholder(ref)}` } }],
    links: [permalinkTo(ref, { label: 'thread', fallback: `<#${C2}>` })],
  });

  it('holds a row until the linked message is posted, then fills in its permalink (asked once)', async () => {
    const { outbox, gateway, drain } = setup();
    let failures = 0;
    gateway.fault = (a) => (a.text === 'root' && failures++ < 3 ? new Retryable('HTTP 503') : undefined);
    const root = await outbox.enqueuePost({ channel: C2, payload: text('root') });
    await outbox.enqueuePost({ channel: C1, payload: linking(root, 'summary') });
    await outbox.enqueuePost({ channel: C1, payload: linking(root, 'again') });
    await drain();
    const rootTs = gateway.calls.find((c) => c.method === 'postMessage' && c.args.text === 'root');
    if (rootTs?.method !== 'postMessage') throw new Error('root not posted');
    const url = `https://fake.slack.test/archives/${C2}/p${rootTs.ts.replace('.', '')}`;
    expect(gateway.texts()).toEqual(['root', `summary <${url}|thread>`, `again <${url}|thread>`]);
    const summary = gateway.calls[1];
    expect(summary?.method === 'postMessage' && summary.args.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: `Thread: <${url}|thread>` } },
    ]);
    expect(gateway.permalinkCalls.map((c) => [c.channel, c.message_ts])).toEqual([[C2, rootTs.ts]]);
  });

  it('fills updates and ephemerals too', async () => {
    const { outbox, gateway, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C2, payload: text('root') });
    const status = await outbox.enqueuePost({ channel: C1, payload: text('running…') });
    await drain();
    await outbox.enqueueUpdate({
      messageRef: status,
      payload: { ...linking(root, 'done'), links: [permalinkTo(root)] },
    });
    await outbox.enqueueEphemeral({ channel: C1, user: 'U1', payload: linking(root, 'psst') });
    await drain();
    expect(gateway.texts('update')).toEqual([
      expect.stringMatching(/^done https:\/\/fake\.slack\.test\/archives\/C0000002\/p\d+$/),
    ]);
    expect(gateway.texts('postEphemeral')).toEqual([expect.stringMatching(/^psst <https:.*\|thread>$/)]);
  });

  it('uses the fallback when the linked message will never exist, or Slack has no permalink for it', async () => {
    const { outbox, gateway, drain } = setup();
    gateway.fault = (a) => (a.text === 'bad root' ? new Permanent('channel_not_found') : undefined);
    const bad = await outbox.enqueuePost({ channel: C2, payload: text('bad root') });
    await outbox.enqueuePost({ channel: C1, payload: linking(bad, 'summary') });
    await drain();
    expect(gateway.texts()).toEqual([`summary <#${C2}>`]);

    gateway.fault = (a) => (a.method === 'getPermalink' ? new Permanent('message_not_found') : undefined);
    const gone = await outbox.enqueuePost({ channel: C2, payload: text('root') });
    await outbox.enqueuePost({ channel: C1, payload: linking(gone, 'later') });
    await drain();
    expect(gateway.texts()).toContain(`later <#${C2}>`);
  });

  it('retries the row when Slack is down while asking for the permalink', async () => {
    const { outbox, gateway, drain } = setup();
    let failures = 0;
    gateway.fault = (a) =>
      a.method === 'getPermalink' && failures++ < 2 ? new Retryable('HTTP 503') : undefined;
    const root = await outbox.enqueuePost({ channel: C2, payload: text('root') });
    await outbox.enqueuePost({ channel: C1, payload: linking(root, 'summary') });
    await drain();
    expect(gateway.texts()).toEqual(['root', expect.stringMatching(/^summary <https:.*\|thread>$/)]);
    expect(gateway.attempts.filter((a) => a.method === 'getPermalink')).toHaveLength(3);
  });
});

describe('the loop', () => {
  it('sleeps without polling: no timer while idle, one wake per enqueue', async () => {
    const { outbox, gateway, clock, store } = setup();
    await clock.advance(60_000);
    expect(gateway.attempts).toHaveLength(0);
    await outbox.enqueuePost({ channel: C1, payload: text('x') });
    await clock.advance(0);
    expect(gateway.texts()).toEqual(['x']);
    expect(await store.pendingCount()).toBe(0);
  });

  it('stop() waits for the call in flight to be recorded', async () => {
    const { outbox, gateway, clock, deliverer, store } = setup();
    const release = gateway.hold();
    await outbox.enqueuePost({ channel: C1, payload: text('x') });
    await clock.advance(0);
    const stopped = deliverer.stop();
    release();
    await stopped;
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, sent: 1 });
  });
});

describe('refused content and a refused token', () => {
  const rich = (t: string) => ({ text: t, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: t } }] });

  it('a post refused for its content goes once more as plain text that says so; its thread follows', async () => {
    const { outbox, gateway, drain, store } = setup();
    gateway.fault = (a) => (a.text === 'rich root' ? new Permanent('invalid_blocks') : undefined);
    const root = await outbox.enqueuePost({ channel: C1, payload: rich('rich root') });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: text('reply') });
    await drain();
    expect(gateway.calls.map((c) => [c.args.text, 'blocks' in c.args])).toEqual([
      ['rich root\n_(simplified: Slack refused the formatted message, invalid_blocks)_', false],
      ['reply', false],
    ]);
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, sent: 2, failed: 0 });
  });

  it('msg_too_long: the plain text is clipped well below the limit; a second refusal fails the row', async () => {
    const { outbox, gateway, drain, store } = setup();
    gateway.fault = (a) => (a.text.length > 3500 ? new Permanent('msg_too_long') : undefined);
    await outbox.enqueuePost({ channel: C1, payload: text('x'.repeat(50_000)) });
    await outbox.enqueueUpdate({
      messageRef: await outbox.enqueuePost({ channel: C2, payload: text('short') }),
      payload: text('y'.repeat(45_000)),
    });
    await drain();
    const [long, , update] = gateway.calls;
    expect(long?.args.text).toMatch(
      /^x+…\n_\(simplified: Slack refused the formatted message, msg_too_long\)_$/,
    );
    expect(long?.args.text.length).toBeLessThanOrEqual(3500);
    expect(update?.method).toBe('update');
    expect(update?.args.text).toMatch(/^y+…\n_\(simplified/);

    gateway.fault = (a) => (a.text.startsWith('hopeless') ? new Permanent('invalid_blocks') : undefined);
    await outbox.enqueuePost({ channel: C1, payload: rich('hopeless') });
    await drain();
    expect(gateway.attempts.filter((a) => a.text.startsWith('hopeless'))).toHaveLength(2);
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, failed: 1 });
  });

  it('a refused token pauses delivery, keeps every row, says so once and in the stats; a working token resumes in order', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => lines.push(JSON.parse(l)) },
    });
    const { outbox, gateway, clock, drain, store } = setup({ logger });
    const t0 = clock.now();
    gateway.fault = () => new Permanent('token_revoked');
    for (const t of ['a1', 'a2', 'a3']) await outbox.enqueuePost({ channel: C1, payload: text(t) });
    await outbox.enqueuePost({ channel: C2, payload: text('b1') });
    await outbox.enqueueEphemeral({ channel: C2, user: 'U1', payload: text('psst') });
    await clock.advance(10 * 60_000);
    // Nothing failed, nothing sent; only the first calls and the periodic probes reached Slack.
    expect(await store.outboxCounts()).toMatchObject({ pending: 5, sent: 0, failed: 0 });
    // The first refusal paused everything: no other row was even tried.
    expect(gateway.attempts.filter((a) => a.method !== 'authTest').map((a) => a.text)).toEqual(['a1']);
    expect(gateway.attempts.filter((a) => a.method === 'authTest')).toHaveLength(20);
    expect((await outbox.stats()).authFailure).toEqual({ code: 'token_revoked', since: t0 });
    const loud = lines.filter((l) => l.level === 50);
    expect(loud).toHaveLength(1);
    expect(loud[0]?.msg).toMatch(
      /Slack refuses the bot token \(token_revoked\): delivery paused, every message kept/,
    );

    gateway.fault = undefined;
    await drain();
    expect([...gateway.texts()].sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'psst']);
    expect(gateway.texts().filter((t) => t.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect((await outbox.stats()).authFailure).toBeUndefined();
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, sent: 5, failed: 0 });
    expect(lines.some((l) => l.msg === 'outbox: the bot token works again; delivery resumed')).toBe(true);
  });
});
