import { expect, it } from 'vitest';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

/**
 * Outbox claims and shared pacing (issue 21 point 2), the same on both stores: a replica claims
 * a pending row with a lease; another replica cannot while the lease runs, can once it lapsed;
 * every outcome ends the claim; channel pacing rows, the dead-man's switch and the VIP holder
 * round-trip.
 */

async function post(store: Store, channel: string, now: number): Promise<number> {
  const ref = await store.createMessage({ channel, threadRef: null, now });
  return store.insertOutbox({
    channel,
    queueKey: `${channel}:${ref}`,
    op: 'post',
    messageRef: ref,
    threadRef: null,
    user: null,
    payload: '{"text":"hi"}',
    now,
  });
}

describeStoreContract('outbox claims', ({ kind, store, current }) => {
  it('lets one replica claim a row until its lease lapses, counting each attempt', async () => {
    const s = store();
    const id = await post(s, 'C1', 1000);
    expect(await s.claimOutbox(id, 'replica-a', 1000, 61_000)).toBe(true);
    // Another replica, even on another connection, is refused while A's lease runs.
    const other = await current().open();
    try {
      expect(await other.claimOutbox(id, 'replica-b', 30_000, 90_000)).toBe(false);
      const [head] = await other.pendingHeads();
      expect(head).toMatchObject({ id, claimedBy: 'replica-a', leaseUntil: 61_000, attempts: 1 });
      // A died: its lease lapses, B claims the row.
      expect(await other.claimOutbox(id, 'replica-b', 61_000, 121_000)).toBe(true);
      expect(await s.claimOutbox(id, 'replica-a', 62_000, 122_000)).toBe(false);
      const [again] = await s.pendingHeads();
      expect(again).toMatchObject({ claimedBy: 'replica-b', attempts: 2 });
    } finally {
      await other.close();
    }
  });

  it('ends the claim with every outcome, and never claims a row that is no longer pending', async () => {
    const s = store();
    const deferred = await post(s, 'C1', 1);
    const sent = await post(s, 'C2', 1);
    const failed = await post(s, 'C3', 1);
    for (const id of [deferred, sent, failed]) expect(await s.claimOutbox(id, 'a', 1, 60_001)).toBe(true);
    await s.deferOutbox(deferred, 5000, 'ratelimited');
    await s.markPosted(sent, '1700000000.000100', 2);
    await s.markFailed(failed, 'channel_not_found', 2);
    const heads = await s.pendingHeads();
    expect(heads.map((h) => ({ id: h.id, claimedBy: h.claimedBy, leaseUntil: h.leaseUntil }))).toEqual([
      { id: deferred, claimedBy: null, leaseUntil: 0 },
    ]);
    expect(await s.claimOutbox(sent, 'b', 3, 60_003)).toBe(false);
    expect(await s.claimOutbox(failed, 'b', 3, 60_003)).toBe(false);
    expect(await s.claimOutbox(deferred, 'b', 3, 60_003)).toBe(true);
  });

  it('keeps each channel’s pacing for every replica', async () => {
    const s = store();
    expect(await s.channelPacing(['C1'])).toEqual([]);
    await s.saveChannelPacing([
      { channel: 'C1', tokens: 0.5, at: 1000, pausedUntil: 0 },
      { channel: 'C2', tokens: 3, at: 1200, pausedUntil: 9000 },
    ]);
    await s.saveChannelPacing([{ channel: 'C1', tokens: -1, at: 2000, pausedUntil: 0 }]);
    const other = await current().open();
    try {
      const rows = await other.channelPacing(['C1', 'C2', 'C3']);
      expect(rows.sort((a, b) => a.channel.localeCompare(b.channel))).toEqual([
        { channel: 'C1', tokens: -1, at: 2000, pausedUntil: 0 },
        { channel: 'C2', tokens: 3, at: 1200, pausedUntil: 9000 },
      ]);
    } finally {
      await other.close();
    }
  });

  it("keeps the dead-man's switch for the next leader: the latest Watchdog, and since when it is down", async () => {
    const s = store();
    expect(await s.deadmanRecord()).toEqual({ lastSeen: null, lostSince: null });
    await s.recordWatchdog(5000);
    await s.recordWatchdog(3000); // a late, older delivery changes nothing
    await s.setDeadmanLost(9000);
    const other = await current().open();
    try {
      expect(await other.deadmanRecord()).toEqual({ lastSeen: 5000, lostSince: 9000 });
      await other.recordWatchdog(12_000);
      await other.setDeadmanLost(null);
      expect(await s.deadmanRecord()).toEqual({ lastSeen: 12_000, lostSince: null });
    } finally {
      await other.close();
    }
  });

  it('keeps the VIP holder for every replica and the next leader; a move is decided in one transaction', async () => {
    const s = store();
    expect(await s.vipHolder()).toBeUndefined();
    await s.setVipHolder('pi-a', 1000, 'pi-a/VI_1');
    const other = await current().open();
    try {
      expect(await other.vipHolder()).toEqual({ holder: 'pi-a', at: 1000, reporter: 'pi-a/VI_1' });
      // Two replicas told of the same move at once: the store's write transactions go one at a
      // time, so exactly one of them finds the old holder and records (announces) the move.
      const move = (by: Store) =>
        by.atomically(async () => {
          const known = await by.vipHolder();
          if (known?.holder === 'pi-b') return false;
          await by.setVipHolder('pi-b', 2000, null);
          return true;
        });
      // SQLite: one serving process (its serve lock), so the race is within one store.
      const racers = kind === 'postgres' ? [s, other, s, other] : [s, s, s, s];
      const results = await Promise.all(racers.map(move));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await s.vipHolder()).toEqual({ holder: 'pi-b', at: 2000, reporter: null });
      // What the leader's watcher saw, apart from what was announced; null: no single holder.
      expect(await s.watchedVipHolder()).toBeUndefined();
      await other.setWatchedVipHolder('pi-a', 2500);
      expect(await s.watchedVipHolder()).toEqual({ holder: 'pi-a', at: 2500 });
      await s.setWatchedVipHolder(null, 3000);
      expect(await other.watchedVipHolder()).toEqual({ holder: null, at: 3000 });
      expect(await other.vipHolder()).toEqual({ holder: 'pi-b', at: 2000, reporter: null });
    } finally {
      await other.close();
    }
  });
});
