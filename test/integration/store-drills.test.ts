import { expect, it } from 'vitest';
import {
  type Drill,
  finishDrill,
  restored,
  startDrill,
  stopSent,
  type Transition,
} from '../../src/domain/drill.js';
import { drillInput } from '../support/drill-fixtures.js';
import { describeStoreContract } from '../support/store-kinds.js';

const ok = (t: Transition): Drill => {
  if (!t.ok) throw new Error(t.reason);
  return t.next;
};
const approved = (d: Drill) => ({ ...d.approval, state: 'approved' as const });

describeStoreContract('drills in the store', ({ store, reopen }) => {
  it('keeps a drill through every transition, by compare-and-set, across a reopen', async () => {
    const d = await store().insertDrill(drillInput('failover', 1000));
    expect(d.id).toBeGreaterThan(0);
    expect(await store().drillByApproval(d.approval.id)).toEqual(d);
    const running = ok(startDrill(d, approved(d), 'pi-a', 2000));
    expect(await store().compareAndSetDrill(running, d.version)).toBe(true);
    // A stale writer loses.
    expect(await store().compareAndSetDrill(running, d.version)).toBe(false);
    const sent = ok(stopSent(running, 2100));
    expect(await store().compareAndSetDrill(sent, running.version)).toBe(true);
    const again = await reopen();
    expect(await again.unfinishedDrills()).toEqual([sent]);
    expect(await again.drillById(d.id)).toEqual(sent);
  });

  it('one drill runs at a time: a second one cannot start while the first runs, and can after', async () => {
    const a = await store().insertDrill(drillInput('failover', 1000));
    const b = await store().insertDrill(drillInput('redis', 1100));
    const aRun = ok(startDrill(a, approved(a), 'pi-a', 2000));
    expect(await store().compareAndSetDrill(aRun, a.version)).toBe(true);
    const bRun = ok(startDrill(b, approved(b), 'pi-b', 2000));
    expect(await store().compareAndSetDrill(bRun, b.version)).toBe(false);
    const aDone = ok(finishDrill(aRun, 'completed', 'done', 3000));
    expect(await store().compareAndSetDrill(aDone, aRun.version)).toBe(true);
    expect(await store().compareAndSetDrill(bRun, b.version)).toBe(true);
  });

  it('lastDrills: per incident, the last drill that ran; rejected ones do not count; drills lists newest first', async () => {
    expect(await store().lastDrills()).toEqual([]);
    const run = async (kind: 'failover' | 'redis', at: number, outcome: 'completed' | 'interrupted') => {
      const d = await store().insertDrill(drillInput(kind, at));
      const r = ok(startDrill(d, approved(d), kind === 'failover' ? 'pi-a' : 'pi-b', at + 1));
      let last = r;
      if (outcome === 'interrupted') {
        const s = ok(stopSent(r, at + 2));
        last = ok(restored(s, at + 3));
      }
      const f = ok(finishDrill(last, outcome, outcome, at + 10));
      expect(await store().compareAndSetDrill(f, d.version)).toBe(true);
      return f;
    };
    const f1 = await run('failover', 1000, 'completed');
    const r1 = await run('redis', 2000, 'completed');
    const f2 = await run('failover', 3000, 'interrupted');
    // Rejected later: asked, never ran.
    const rejected = await store().insertDrill(drillInput('failover', 4000));
    const gone = {
      ...rejected,
      phase: 'finished' as const,
      outcome: 'rejected' as const,
      finishedAt: 4001,
      version: 1,
    };
    expect(await store().compareAndSetDrill(gone, 0)).toBe(true);
    expect(await store().lastDrills()).toEqual([
      { incidentNumber: '2', id: r1.id, kind: 'redis', outcome: 'completed', finishedAt: 2010 },
      { incidentNumber: '4', id: f2.id, kind: 'failover', outcome: 'interrupted', finishedAt: 3010 },
    ]);
    expect((await store().drills(10)).map((d) => d.id)).toEqual([rejected.id, f2.id, r1.id, f1.id]);
    expect((await store().drills(2)).map((d) => d.id)).toEqual([rejected.id, f2.id]);
    expect(await store().unfinishedDrills()).toEqual([]);
  });
});
