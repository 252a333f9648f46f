import { beforeEach, expect, it } from 'vitest';
import { newApproval } from '../../src/domain/approval.js';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

/** store.incidentCoverage and store.lastDrills: the coverage read, the same on both stores. */

describeStoreContract('coverage', ({ store: opened }) => {
  let store: Store;
  beforeEach(() => {
    store = opened();
  });

  const open = async (key: string, number: string, now: number) =>
    (await store.openOrReuseIncident({ key, number, title: 't', channel: 'C1', requester: 'U1', now }))
      .incident;

  const finished = async (incidentId: number, state: 'succeeded' | 'failed', finishedAt: number) => {
    const a = newApproval({
      id: `ap_${Math.random().toString(36).slice(2, 12)}`,
      incidentId,
      actionId: 'restart-redis',
      targets: ['pi-b'],
      commands: [{ node: 'pi-b', command: 'sudo systemctl restart redis-server' }],
      requiredApprovals: 1,
      requester: 'U1',
      now: finishedAt - 100,
      ttlMs: 60_000,
    });
    await store.insertApproval({ ...a, state, startedAt: finishedAt - 50, finishedAt });
  };

  it('one row per incident with its newest sighting, fix, verification and failover cause', async () => {
    const redis = await open('2:pi-b', '2', 1000);
    await store.appendTimeline({
      incidentId: redis.id,
      at: 2000,
      kind: 'diagnosis',
      text: 'Opened',
      data: {},
    });
    await finished(redis.id, 'succeeded', 2900);
    await finished(redis.id, 'failed', 3400);
    const verification = (ok: boolean) => ({ verification: { ok, attempts: 1, checks: [] } });
    await store.appendTimeline({
      incidentId: redis.id,
      at: 3000,
      kind: 'outcome',
      text: 'Succeeded',
      data: verification(true),
    });
    await store.appendTimeline({
      incidentId: redis.id,
      at: 3500,
      kind: 'outcome',
      text: 'Failed',
      data: verification(false),
    });
    await store.appendTimeline({ incidentId: redis.id, at: 3600, kind: 'outcome', text: 'Interrupted' });

    const failover = await open('failover:pi-a', '4', 5000);
    const cause = (kind: string) => ({ failover: { from: 'pi-a', to: 'pi-b', cause: { kind } } });
    await store.appendTimeline({
      incidentId: failover.id,
      at: 5000,
      kind: 'notice',
      text: 'VIP moved',
      data: { from: 'pi-a' },
    });
    await store.appendTimeline({
      incidentId: failover.id,
      at: 6000,
      kind: 'diagnosis',
      text: 'a',
      data: cause('keepalived-down'),
    });
    await store.appendTimeline({
      incidentId: failover.id,
      at: 7000,
      kind: 'diagnosis',
      text: 'b',
      data: cause('unreachable'),
    });
    await store.resolveIncident(failover.id, 8000, 'VIP back on pi-a.');
    await store.appendTimeline({
      incidentId: failover.id,
      at: 8000,
      kind: 'resolved',
      text: 'back',
      data: { cause: 'vip-back' },
    });

    const storm = await open('6:pi-b', '6', 9000);
    await store.resolveIncident(storm.id, 9500, 'by hand');
    await store.appendTimeline({
      incidentId: storm.id,
      at: 9500,
      kind: 'resolved',
      text: 'x',
      data: { cause: 'by-hand' },
    });
    const healed = await open('1:pi-a', '1', 10_000);
    await store.appendTimeline({
      incidentId: healed.id,
      at: 10_500,
      kind: 'alert',
      text: 'NginxDown firing',
      data: null,
    });
    await store.resolveIncident(healed.id, 11_000, 'healthy');
    await store.appendTimeline({
      incidentId: healed.id,
      at: 11_000,
      kind: 'resolved',
      text: 'h',
      data: { cause: 'healthy-status', checks: [] },
    });

    expect(await store.incidentCoverage()).toEqual([
      {
        id: redis.id,
        key: '2:pi-b',
        number: '2',
        openedAt: 1000,
        lastSeenAt: 2000,
        lastFixedAt: 2900,
        lastVerifiedAt: 3000,
        failoverCause: null,
      },
      {
        id: failover.id,
        key: 'failover:pi-a',
        number: '4',
        openedAt: 5000,
        lastSeenAt: 7000,
        lastFixedAt: null,
        lastVerifiedAt: 8000,
        failoverCause: 'unreachable',
      },
      {
        id: storm.id,
        key: '6:pi-b',
        number: '6',
        openedAt: 9000,
        lastSeenAt: 9000,
        lastFixedAt: null,
        lastVerifiedAt: null,
        failoverCause: null,
      },
      {
        id: healed.id,
        key: '1:pi-a',
        number: '1',
        openedAt: 10_000,
        lastSeenAt: 10_500,
        lastFixedAt: null,
        lastVerifiedAt: 11_000,
        failoverCause: null,
      },
    ]);
  });

  it('an empty store: no incidents, no drills', async () => {
    expect(await store.incidentCoverage()).toEqual([]);
    expect(await store.lastDrills()).toEqual([]);
  });
});
