import { describe, expect, it } from 'vitest';
import {
  type Drill,
  describeFigures,
  drillRefusal,
  finishDrill,
  measureMove,
  moveVerdict,
  restored,
  restoreOwed,
  restoring,
  runbookVerdict,
  startDrill,
  startupAction,
  stopSent,
  type Transition,
  type VipSample,
  withApproval,
} from '../../src/domain/drill.js';
import { drillInput } from '../support/drill-fixtures.js';

const ok = (t: Transition): Drill => {
  if (!t.ok) throw new Error(t.reason);
  return t.next;
};
const drill = (kind: 'failover' | 'redis' = 'failover'): Drill => ({ ...drillInput(kind, 1000), id: 7 });
const approved = (d: Drill) => ({ ...d.approval, state: 'approved' as const });

/** VIP requests every 100 ms from `start`, answered 5 ms later, served as `served(t)` says. */
function probes(start: number, end: number, served: (t: number) => string | undefined): VipSample[] {
  const out: VipSample[] = [];
  for (let t = start; t <= end; t += 100) {
    const by = served(t);
    out.push({ sentAt: t, doneAt: t + 5, ok: by !== undefined, servedBy: by });
  }
  return out;
}

describe('the drill state machine', () => {
  it('awaiting approval → running → stop sent → restoring → restored → completed, each a new version', () => {
    const d = drill();
    const r = ok(startDrill(d, approved(d), 'pi-a', 2000));
    expect(r).toMatchObject({ phase: 'running', node: 'pi-a', startedAt: 2000, version: 1 });
    expect(restoreOwed(r)).toBe(false);
    const s = ok(stopSent(r, 2100));
    expect(restoreOwed(s)).toBe(true);
    expect(stopSent(s, 2200)).toEqual({ ok: false, reason: 'drill 7 already sent its stop' });
    const figures = {
      kind: 'redis' as const,
      node: 'pi-b',
      detectionMs: 900,
      statusRuns: 1,
      recoveryMs: 1500,
      verified: true,
    };
    const m = ok(restoring(s, figures));
    expect(m.phase).toBe('restoring');
    // Nothing reads "completed" while the stopped service is not back.
    expect(finishDrill(m, 'completed', 'x', 5000)).toEqual({
      ok: false,
      reason: 'drill 7 stopped a service on pi-a that is not restored',
    });
    const back = ok(restored(m, 4000));
    expect(restoreOwed(back)).toBe(false);
    const done = ok(finishDrill(back, 'completed', 'fine', 5000));
    expect(done).toMatchObject({ phase: 'finished', outcome: 'completed', finishedAt: 5000, version: 5 });
    expect(finishDrill(done, 'failed', 'again', 6000).ok).toBe(false);
  });

  it('an approval not yet complete keeps it waiting; a rejection or expiry ends it; it cannot start unapproved', () => {
    const d = drill();
    expect(startDrill(d, d.approval, 'pi-a', 2000)).toEqual({
      ok: false,
      reason: 'drill 7 is not approved (pending)',
    });
    expect(withApproval(d, { ...d.approval, version: 1 }, 2000).phase).toBe('awaiting-approval');
    const rejected = withApproval(d, { ...d.approval, state: 'rejected', outcome: 'Rejected by U1' }, 2000);
    expect(rejected).toMatchObject({ phase: 'finished', outcome: 'rejected', summary: 'Rejected by U1' });
    expect(withApproval(d, { ...d.approval, state: 'expired' }, 3000)).toMatchObject({
      outcome: 'expired',
      finishedAt: 3000,
    });
  });

  it('refused while an incident is open (naming it) or another drill runs', () => {
    expect(drillRefusal({ openIncidents: [], activeDrills: [] })).toBeUndefined();
    expect(
      drillRefusal({
        openIncidents: [{ key: '2:pi-b', number: '2', title: 'Redis cache unavailable' }],
        activeDrills: [],
      }),
    ).toBe(
      'an incident is open: Redis cache unavailable (2:pi-b). Resolve it first; a drill never runs over a real incident',
    );
    expect(drillRefusal({ openIncidents: [], activeDrills: [{ id: 3, kind: 'redis' }] })).toBe(
      'drill 3 (redis) is running',
    );
  });

  it('start-up after a crash: restore what was stopped, end what stopped nothing, leave a waiting one', () => {
    const d = drill();
    expect(startupAction(d)).toEqual({ kind: 'none' });
    const r = ok(startDrill(d, approved(d), 'pi-a', 2000));
    expect(startupAction(r)).toEqual({
      kind: 'end',
      summary: 'the bot restarted before the drill stopped anything',
    });
    const s = ok(stopSent(r, 2100));
    expect(startupAction(s)).toEqual({ kind: 'restore', actionId: 'drill-start-keepalived', node: 'pi-a' });
    const redis = ok(stopSent(ok(startDrill(drill('redis'), approved(d), 'pi-b', 2000)), 2100));
    expect(startupAction(redis)).toEqual({ kind: 'restore', actionId: 'restart-redis', node: 'pi-b' });
    // Restored, then interrupted: nothing is owed any more.
    const back = ok(finishDrill(ok(restored(s, 3000)), 'interrupted', 'restored at start-up', 3100));
    expect(startupAction(back)).toEqual({ kind: 'none' });
  });
});

describe('the failover figures', () => {
  const stopAt = 10_000;
  // pi-a answers until 10.2 s, nothing answers until 11.6 s, then pi-b.
  const samples = probes(9_500, 14_000, (t) =>
    t < 10_200 ? 'frontend-cache' : t < 11_600 ? undefined : 'backend-spare',
  );

  it('time to the new holder counts from the stop to the first answer from another node; failures in between', () => {
    const m = measureMove(samples, { since: stopAt, from: 'frontend-cache' });
    expect(m).toEqual({ moveMs: 1605, to: 'backend-spare', probes: 17, failed: 14 });
    expect(runbookVerdict(m.moveMs)).toBe('within');
    expect(runbookVerdict(3500)).toBe('slower');
    expect(runbookVerdict(null)).toBe('never');
  });

  it('probing stops once the new node answered steadily, or at the timeout (the clock is an argument)', () => {
    const options = { timeoutMs: 10_000, steadyProbes: 5 };
    const upTo = (t: number) => samples.filter((s) => s.doneAt <= t);
    expect(moveVerdict(upTo(11_700), { since: stopAt, from: 'frontend-cache' }, 11_700, options)).toBe(
      'waiting',
    );
    expect(moveVerdict(upTo(12_100), { since: stopAt, from: 'frontend-cache' }, 12_100, options)).toBe(
      'moved',
    );
    // Nobody ever answers: the timeout ends it.
    const dead = probes(10_000, 20_000, () => undefined);
    expect(moveVerdict(dead, { since: stopAt, from: 'frontend-cache' }, 19_999, options)).toBe('waiting');
    expect(moveVerdict(dead, { since: stopAt, from: 'frontend-cache' }, 20_000, options)).toBe('timed-out');
    expect(measureMove(dead, { since: stopAt, from: 'frontend-cache' })).toMatchObject({
      moveMs: null,
      to: null,
      failed: 101,
    });
  });

  it('the thread text puts the figures against the runbook', () => {
    expect(
      describeFigures({
        kind: 'failover',
        from: 'pi-a',
        to: 'pi-b',
        newHolderMs: 1605,
        probes: 17,
        failedProbes: 14,
        backMs: 1200,
        failedProbesBack: 0,
        runbookMs: 2000,
      }),
    ).toBe(
      'VIP from pi-a to pi-b in 1.6 s: as the runbook says (about 2.0 s). 14 of 17 requests to the VIP failed meanwhile (one every 100 ms). Back on pi-a 1.2 s after keepalived started again; 0 request(s) failed on the way back.',
    );
  });
});
