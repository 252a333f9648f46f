import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Deliverer } from '../../src/outbox/deliverer.js';
import { createOutbox, type Outbox } from '../../src/outbox/outbox.js';
import { createSlackGateway } from '../../src/slack/bolt-runtime.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres-store.js';
import { type SlackEmulator, startSlackEmulator, waitFor } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * The outbox across replicas (issue 21 point 2): three deliverers, each with a pool of its own as
 * three processes have, on one PostgreSQL, sending to the Slack emulator. Every message is posted
 * once, each thread in order, each channel paced as one bot would pace it; rows a replica claimed
 * and never finished (it died) are delivered by another once the claim lapses.
 */

const db = await scratchPostgresDatabase('the outbox replicas tests');
const INTERVAL_MS = 20;

interface Replica {
  readonly store: PostgresStore;
  readonly outbox: Outbox;
  readonly deliverer: Deliverer;
}

let emu: SlackEmulator | undefined;
let replicas: Replica[] = [];
afterEach(async () => {
  for (const r of replicas) await r.deliverer.stop();
  for (const r of replicas) await r.store.close();
  replicas = [];
  await emu?.close();
  emu = undefined;
});
afterAll(() => db?.drop());

async function replica(name: string, intervalMs = INTERVAL_MS): Promise<Replica> {
  if (db === undefined || emu === undefined) throw new Error('no database or emulator');
  const store = await openPostgresStore({ url: db.url, poolSize: 4 });
  const { gateway } = createSlackGateway({ botToken: 'xoxb-test', slackApiUrl: emu.apiUrl });
  const { outbox, deliverer } = createOutbox({
    store,
    gateway,
    replica: name,
    replicaPollMs: 100,
    pacing: { postIntervalMs: intervalMs, postBurst: 1 },
  });
  const r = { store, outbox, deliverer };
  replicas.push(r);
  return r;
}

async function clear(): Promise<void> {
  const s = replicas[0]?.store;
  if (s === undefined) return;
  await s.atomically(async () => {
    await s.pruneSentOutbox(Number.MAX_SAFE_INTEGER);
  });
}

/** Posts that reached Slack: text, channel, thread and when. */
function posted(emulator: SlackEmulator) {
  return emulator
    .callsTo('chat.postMessage')
    .filter((c) => c.response.ok === true)
    .map((c) => ({
      text: String(c.params.text),
      channel: String(c.params.channel),
      thread: c.params.thread_ts === undefined ? undefined : String(c.params.thread_ts),
      ts: String((c.response as { ts?: string }).ts),
      time: c.time,
    }));
}

describe.skipIf(db === undefined)('the outbox on three replicas', () => {
  it('posts every message once, each thread in order', async () => {
    emu = await startSlackEmulator();
    const all = [await replica('r1'), await replica('r2'), await replica('r3')];
    await clear();
    const channels = ['C1', 'C2', 'C3'];
    const threads = 4;
    const replies = 8;
    // Each thread enqueued by another replica than its neighbour, replies spread over all three.
    const roots: { channel: string; thread: number; ref: string }[] = [];
    for (const channel of channels) {
      for (let t = 0; t < threads; t++) {
        const by = all[t % 3] as Replica;
        const ref = await by.outbox.enqueuePost({ channel, payload: { text: `${channel} t${t} root` } });
        roots.push({ channel, thread: t, ref });
      }
    }
    for (const r of all) r.deliverer.start();
    await Promise.all(
      all.map(async (r, i) => {
        for (let n = 0; n < replies; n++) {
          for (const root of roots) {
            if ((root.thread + n) % 3 !== i) continue;
            await r.outbox.enqueuePost({
              channel: root.channel,
              threadRef: root.ref,
              payload: { text: `${root.channel} t${root.thread} r${n}` },
            });
          }
        }
      }),
    );
    // Replicas enqueue in any interleaving; a thread's order is its enqueue (seq) order.
    const total = channels.length * threads * (replies + 1);
    const emulator = emu;
    await waitFor(() => posted(emulator).length >= total, 60_000, `${total} posts`, 50);
    await new Promise((r) => setTimeout(r, 300));
    const posts = posted(emulator);
    expect(posts).toHaveLength(total);
    expect(new Set(posts.map((p) => p.text)).size).toBe(total);
    const rows = await (all[0] as Replica).store.outboxCounts();
    expect(rows).toMatchObject({ pending: 0, failed: 0 });

    for (const root of roots) {
      const rootTs = posts.find((p) => p.text === `${root.channel} t${root.thread} root`)?.ts;
      // A ts is unique within its channel only.
      const thread = posts
        .filter((p) => p.channel === root.channel && p.thread === rootTs)
        .map((p) => p.text);
      expect(thread).toEqual(
        Array.from({ length: replies }, (_, n) => `${root.channel} t${root.thread} r${n}`),
      );
    }
  }, 90_000);

  it('paces each channel as one bot would, whichever replica posts', async () => {
    emu = await startSlackEmulator();
    const intervalMs = 100;
    const all = [
      await replica('p1', intervalMs),
      await replica('p2', intervalMs),
      await replica('p3', intervalMs),
    ];
    await clear();
    const perChannel = 25;
    for (let n = 0; n < perChannel; n++) {
      for (const channel of ['P1', 'P2']) {
        await (all[n % 3] as Replica).outbox.enqueuePost({ channel, payload: { text: `${channel} ${n}` } });
      }
    }
    for (const r of all) r.deliverer.start();
    const emulator = emu;
    await waitFor(() => posted(emulator).length >= 2 * perChannel, 30_000, 'every post', 50);
    const posts = posted(emulator);
    for (const channel of ['P1', 'P2']) {
      const times = posts
        .filter((p) => p.channel === channel)
        .map((p) => p.time)
        .sort((a, b) => a - b);
      const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
      let most = 0;
      for (const [i, start] of times.entries())
        most = Math.max(most, times.slice(i).filter((t) => t < start + 1000).length);
      console.info(`${channel}: ${times.length} posts over ${span} ms, at most ${most} in any second`);
      // Burst 1, one post per 100 ms per channel: three replicas with a bucket each would go
      // about three times as fast.
      expect(span).toBeGreaterThanOrEqual((times.length - 1) * intervalMs * 0.9);
      expect(most).toBeLessThanOrEqual(11);
      // Top-level posts of a channel keep their enqueue order across replicas.
      expect(posts.filter((p) => p.channel === channel).map((p) => p.text)).toEqual(
        Array.from({ length: perChannel }, (_, n) => `${channel} ${n}`),
      );
    }
  }, 60_000);

  it('delivers the rows of a replica that died mid-delivery, once its claim lapses, in thread order', async () => {
    emu = await startSlackEmulator();
    const survivor = await replica('survivor');
    await clear();
    const root = await survivor.outbox.enqueuePost({ channel: 'C9', payload: { text: 'root' } });
    for (let n = 0; n < 5; n++)
      await survivor.outbox.enqueuePost({ channel: 'C9', threadRef: root, payload: { text: `r${n}` } });
    // The dead replica's claim on the thread's head: taken in its pump, never finished.
    const [head] = await survivor.store.pendingHeads();
    const claimedAt = Date.now();
    expect(await survivor.store.claimOutbox(head?.id ?? 0, 'dead-replica', claimedAt, claimedAt + 1500)).toBe(
      true,
    );
    survivor.deliverer.start();
    await new Promise((r) => setTimeout(r, 700));
    expect(posted(emu)).toEqual([]);
    const emulator = emu;
    await waitFor(() => posted(emulator).length >= 6, 10_000, 'the thread delivered', 50);
    const posts = posted(emulator);
    expect(posts.map((p) => p.text)).toEqual(['root', 'r0', 'r1', 'r2', 'r3', 'r4']);
    expect(posts[0]?.time ?? 0).toBeGreaterThanOrEqual(claimedAt + 1500 - 50);
    const [after] = await survivor.store.pendingHeads();
    expect(after).toBeUndefined();
  }, 30_000);
});
