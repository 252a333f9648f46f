import { beforeEach, expect, it } from 'vitest';
import { newApproval } from '../../src/domain/approval.js';
import { applyApprovalEvent, type auditEntry } from '../../src/remediation/approval-store.js';
import type { Store } from '../../src/store/store-port.js';
import { describeStoreContract } from '../support/store-kinds.js';

function approval(incidentId: number, requiredApprovals = 1) {
  return newApproval({
    id: `ap_${Math.random().toString(36).slice(2, 12)}`,
    incidentId,
    actionId: 'restart-nginx',
    targets: ['pi-a'],
    commands: [{ node: 'pi-a', command: 'sudo systemctl restart nginx' }],
    requiredApprovals,
    requester: 'U0REQUEST',
    now: 1000,
    ttlMs: 60_000,
  });
}

const allowed = { allowed: true as const, via: 'user' as const };

describeStoreContract('approvals', ({ kind, current, store: opened, reopen }) => {
  let store: Store;
  beforeEach(() => {
    store = opened();
  });

  it('compare-and-set wins once per version', async () => {
    const { incident } = await store.openOrReuseIncident({
      key: '1:pi-a',
      number: '1',
      title: 't',
      channel: 'C1',
      requester: 'U1',
      now: 1,
    });
    const a = approval(incident.id);
    await store.insertApproval(a);
    const next = { ...a, state: 'rejected' as const, version: a.version + 1 };
    expect(await store.compareAndSetApproval(next, a.version)).toBe(true);
    expect(await store.compareAndSetApproval({ ...next, version: next.version + 1 }, a.version)).toBe(false);
    expect((await store.approvalById(a.id))?.state).toBe('rejected');
    expect((await store.approvalsInStates(['rejected'])).map((x) => x.id)).toEqual([a.id]);
  });

  it('50 approve clicks through the store start exactly one run, and every click is audited', async () => {
    const { incident } = await store.openOrReuseIncident({
      key: '1:pi-a',
      number: '1',
      title: 't',
      channel: 'C1',
      requester: 'U1',
      now: 1,
    });
    const a = approval(incident.id);
    await store.insertApproval(a);
    const audit = {
      appendAudit: (e: ReturnType<typeof auditEntry>) =>
        store.appendAudit({ ...e, targets: [...e.targets], commands: [...e.commands] }),
    };
    let starts = 0;
    for (let i = 0; i < 50; i += 1) {
      const d = await store.atomically(async () =>
        applyApprovalEvent(
          store,
          a.id,
          { kind: 'click-approve', user: `U0CLICK${i % 3}`, authorization: allowed },
          2000 + i,
          { audit },
        ),
      );
      if (d.effects.some((e) => e.kind === 'start-run')) starts += 1;
    }
    expect(starts).toBe(1);
    expect(await store.auditSince(0)).toHaveLength(50);
  });

  // PostgreSQL only: two SQLite connections in one process deadlock (a waiting writer blocks the
  // event loop in busy_timeout while the holder needs it to commit); SQLite's cross-process
  // safety is the write lock of BEGIN IMMEDIATE, tested with real processes in store-incidents.
  if (kind === 'postgres') {
    it('concurrent approve clicks through two stores (two pools, as two processes) start exactly one run', async () => {
      const { incident } = await store.openOrReuseIncident({
        key: '1:pi-a',
        number: '1',
        title: 't',
        channel: 'C1',
        requester: 'U1',
        now: 1,
      });
      const a = approval(incident.id);
      await store.insertApproval(a);
      const other = await current().open();
      try {
        const click = (s: Store, i: number) =>
          s.atomically(async () =>
            applyApprovalEvent(
              s,
              a.id,
              { kind: 'click-approve', user: `U0CLICK${i % 3}`, authorization: allowed },
              2000 + i,
              {
                audit: {
                  appendAudit: (e: ReturnType<typeof auditEntry>) =>
                    s.appendAudit({ ...e, targets: [...e.targets], commands: [...e.commands] }),
                },
              },
            ),
          );
        // All 50 in flight at once, alternating between the stores.
        const decisions = await Promise.all(
          Array.from({ length: 50 }, (_, i) => click(i % 2 === 0 ? store : other, i)),
        );
        const starts = decisions.filter((d) => d.effects.some((e) => e.kind === 'start-run'));
        expect(starts).toHaveLength(1);
        expect(await store.auditSince(0)).toHaveLength(50);
        expect((await other.approvalById(a.id))?.state).toBe((await store.approvalById(a.id))?.state);
      } finally {
        await other.close();
      }
    });
  }

  it('the audit is append-only', async () => {
    await store.appendAudit({
      at: 1,
      approvalId: null,
      incidentId: null,
      actionId: null,
      actor: 'U1',
      event: 'click-approve',
      verdict: 'refused',
      code: 'not-an-approver',
      reason: 'x',
      stateBefore: null,
      stateAfter: null,
      targets: [],
      commands: [],
    });
    await expect(current().raw("UPDATE audit SET reason = 'edited'")).rejects.toThrow(/append-only/);
    await expect(current().raw('DELETE FROM audit')).rejects.toThrow(/append-only/);
    store = await reopen();
    expect((await store.auditSince(0))[0]?.reason).toBe('x');
  });
});
