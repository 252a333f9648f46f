import { expect, it } from 'vitest';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

/**
 * Alert follow-ups across replicas, the same on both stores: one replica claims an incident's
 * follow-up (its summary and diagnosis) while its lease runs, and gets the request as it is now;
 * a diagnosis done is not asked again by later requests that only wanted the summary.
 */

async function incident(store: Store): Promise<number> {
  const { incident: i } = await store.openOrReuseIncident({
    key: 'alert:Storm',
    number: 'alert',
    title: 'Alert Storm',
    channel: 'C0INCIDENT',
    requester: 'okome',
    now: 1000,
  });
  return i.id;
}

describeStoreContract('alert follow-ups', ({ store, current }) => {
  it('one replica claims a follow-up until its lease lapses or it hands it back', async () => {
    const s = store();
    const id = await incident(s);
    await s.requestAlertFollowUp(id, true, 1000);
    await s.requestAlertFollowUp(id, false, 1100);
    const other = await current().open();
    try {
      expect(await s.claimAlertFollowUp(id, 'replica-a', 2000, 32_000)).toEqual({
        incidentId: id,
        diagnose: true,
        version: 2,
        requestedAt: 1000,
      });
      expect(await other.claimAlertFollowUp(id, 'replica-b', 3000, 33_000)).toBeUndefined();
      // Handed back (asked again meanwhile): the next replica takes the newer request.
      await s.requestAlertFollowUp(id, false, 4000);
      await s.releaseAlertFollowUp(id, 'replica-a');
      expect((await other.claimAlertFollowUp(id, 'replica-b', 5000, 35_000))?.version).toBe(3);
      // B died holding it: once its lease lapsed, A takes it.
      expect(await s.claimAlertFollowUp(id, 'replica-a', 34_999, 64_999)).toBeUndefined();
      expect(await s.claimAlertFollowUp(id, 'replica-a', 35_000, 65_000)).toBeDefined();
      // Done: nothing left to claim.
      expect(await s.completeAlertFollowUp(id, 3, true)).toBe(true);
      expect(await other.claimAlertFollowUp(id, 'replica-b', 70_000, 100_000)).toBeUndefined();
    } finally {
      await other.close();
    }
  });

  it('a diagnosis done is not asked again by summary-only requests that came during it', async () => {
    const s = store();
    const id = await incident(s);
    await s.requestAlertFollowUp(id, true, 1000);
    const [first] = await s.pendingAlertFollowUps();
    expect(first).toMatchObject({ diagnose: true, version: 1 });
    // Alerts keep coming while the diagnosis runs.
    await s.requestAlertFollowUp(id, false, 1100);
    expect(await s.completeAlertFollowUp(id, 1, true)).toBe(false);
    expect(await s.pendingAlertFollowUps()).toMatchObject([{ diagnose: false, version: 2 }]);
    // A diagnosis asked after the one that ran (a reopen) stays asked.
    await s.requestAlertFollowUp(id, true, 1200);
    await s.requestAlertFollowUp(id, false, 1300);
    expect(await s.completeAlertFollowUp(id, 2, true)).toBe(false);
    expect(await s.pendingAlertFollowUps()).toMatchObject([{ diagnose: true, version: 4 }]);
    // No diagnosis ran: the ask stays.
    await s.requestAlertFollowUp(id, false, 1400);
    expect(await s.completeAlertFollowUp(id, 4, false)).toBe(false);
    expect(await s.pendingAlertFollowUps()).toMatchObject([{ diagnose: true, version: 5 }]);
  });
});
