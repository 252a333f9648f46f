import { describe, expect, it } from 'vitest';
import {
  type Approval,
  type ApprovalEvent,
  type ApprovalState,
  type Authorization,
  approvalStates,
  type Decision,
  decide,
  newApproval,
} from '../../src/domain/approval.js';
import { applyApprovalEvent, MemoryApprovalStore } from '../../src/remediation/approval-store.js';

const T0 = Date.UTC(2026, 0, 24, 22, 0, 0);
const TTL = 900_000;
const ALLOWED: Authorization = { allowed: true, via: 'user' };
const DENIED: Authorization = { allowed: false, reason: 'you are not one of the configured approvers' };

function approval(overrides: Partial<Approval> = {}): Approval {
  return {
    ...newApproval({
      id: 'ap_aaaaaaaaaaaaaaaaaaaa',
      incidentId: 7,
      actionId: 'restart-nginx',
      targets: ['pi-a'],
      commands: [{ node: 'pi-a', command: 'sudo systemctl restart nginx' }],
      requiredApprovals: 1,
      requester: 'U0REQUESTER',
      now: T0,
      ttlMs: TTL,
    }),
    ...overrides,
  };
}

const approve = (user: string, authorization: Authorization = ALLOWED): ApprovalEvent => ({
  kind: 'click-approve',
  user,
  authorization,
});
const reject = (user: string, authorization: Authorization = ALLOWED): ApprovalEvent => ({
  kind: 'click-reject',
  user,
  authorization,
});
const finishOk: ApprovalEvent = { kind: 'finish', result: 'success', summary: 'restarted, verified' };
const finishBad: ApprovalEvent = { kind: 'finish', result: 'failure', summary: 'exit 1' };

const effectKinds = (d: Decision) => d.effects.map((e) => e.kind);

describe('decide: every transition', () => {
  // [from, event, verdict, code, to]
  const table: ReadonlyArray<
    readonly [ApprovalState, ApprovalEvent, Decision['verdict'], Decision['code'], ApprovalState]
  > = [
    ['pending', approve('U1'), 'accepted', 'approved', 'approved'],
    ['pending', approve('U1', DENIED), 'refused', 'not-an-approver', 'pending'],
    ['pending', reject('U1'), 'accepted', 'rejected', 'rejected'],
    ['pending', reject('U1', DENIED), 'refused', 'not-an-approver', 'pending'],
    ['pending', reject('U0REQUESTER', DENIED), 'accepted', 'rejected', 'rejected'],
    ['pending', { kind: 'expire' }, 'refused', 'not-yet-expired', 'pending'],
    ['pending', { kind: 'start-run' }, 'refused', 'invalid-in-state', 'pending'],
    ['pending', finishOk, 'refused', 'invalid-in-state', 'pending'],
    ['pending', { kind: 'cancel', reason: 'incident resolved' }, 'accepted', 'cancelled', 'cancelled'],
    ['pending', { kind: 'crash-recovery' }, 'refused', 'invalid-in-state', 'pending'],
    ['approved', approve('U2'), 'refused', 'invalid-in-state', 'approved'],
    ['approved', reject('U2'), 'refused', 'invalid-in-state', 'approved'],
    ['approved', { kind: 'start-run' }, 'accepted', 'started', 'running'],
    ['approved', { kind: 'cancel', reason: 'nginx is already back' }, 'accepted', 'cancelled', 'cancelled'],
    ['approved', { kind: 'crash-recovery' }, 'accepted', 'interrupted', 'interrupted'],
    ['approved', finishOk, 'refused', 'invalid-in-state', 'approved'],
    ['running', approve('U2'), 'refused', 'invalid-in-state', 'running'],
    ['running', { kind: 'start-run' }, 'refused', 'invalid-in-state', 'running'],
    ['running', finishOk, 'accepted', 'succeeded', 'succeeded'],
    ['running', finishBad, 'accepted', 'failed', 'failed'],
    ['running', { kind: 'crash-recovery' }, 'accepted', 'interrupted', 'interrupted'],
    [
      'running',
      { kind: 'stuck', reason: 'its end could not be written' },
      'accepted',
      'interrupted',
      'interrupted',
    ],
    ['pending', { kind: 'stuck', reason: 'x' }, 'refused', 'invalid-in-state', 'pending'],
    ['approved', { kind: 'stuck', reason: 'x' }, 'refused', 'invalid-in-state', 'approved'],
    ['running', { kind: 'cancel', reason: 'x' }, 'refused', 'invalid-in-state', 'running'],
    ['running', { kind: 'expire' }, 'refused', 'invalid-in-state', 'running'],
  ];
  const terminal: ApprovalState[] = [
    'succeeded',
    'failed',
    'interrupted',
    'rejected',
    'expired',
    'cancelled',
  ];
  const everyEvent: ApprovalEvent[] = [
    approve('U1'),
    reject('U1'),
    { kind: 'expire' },
    { kind: 'start-run' },
    { kind: 'cancel', reason: 'x' },
    finishOk,
    { kind: 'crash-recovery' },
    { kind: 'stuck', reason: 'x' },
  ];
  const rows = [
    ...table,
    ...terminal.flatMap((s) =>
      everyEvent.map((e) => [s, e, 'refused', 'invalid-in-state', s] as (typeof table)[number]),
    ),
  ];

  it.each(rows)('%s + %o → %s %s, %s', (from, event, verdict, code, to) => {
    const before = approval({ state: from, version: 3 });
    const d = decide(before, event, T0 + 1000);
    expect(d.verdict).toBe(verdict);
    expect(d.code).toBe(code);
    expect(d.next.state).toBe(to);
    expect(d.changed).toBe(verdict === 'accepted');
    expect(d.next.version).toBe(d.changed ? 4 : 3);
    if (!d.changed) expect(d.next).toBe(before);
    expect(d.reason.length).toBeGreaterThan(5);
  });

  it('covers every state', () => {
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set(approvalStates));
  });

  it('refuses in terminal and busy states with a clear reason', () => {
    const reasons = Object.fromEntries(
      (['approved', 'running', 'succeeded', 'failed', 'rejected', 'expired', 'interrupted'] as const).map(
        (s) => [
          s,
          decide(
            approval({ state: s, rejectedBy: { user: 'U9', at: T0 }, outcome: 'restarted' }),
            approve('U1'),
            T0,
          ).reason,
        ],
      ),
    );
    expect(reasons.approved).toMatch(/already approved/i);
    expect(reasons.running).toMatch(/already running/i);
    expect(reasons.succeeded).toMatch(/already ran: succeeded/i);
    expect(reasons.failed).toMatch(/already ran: failed/i);
    expect(reasons.rejected).toMatch(/rejected by U9/i);
    expect(reasons.expired).toMatch(/expired/i);
    expect(reasons.interrupted).toMatch(/never re-run automatically/i);
  });

  it('a click on a finished card says the action already ran, with its state and time', () => {
    const done = decide(
      approval({ state: 'succeeded', finishedAt: T0 + 67_000, outcome: 'restarted, verified' }),
      approve('U1'),
      T0 + 600_000,
    );
    expect(done.verdict).toBe('refused');
    expect(done.reason).toBe('This action already ran: succeeded at 22:01:07 UTC (restarted, verified).');
    expect(done.effects).toEqual([{ kind: 'ephemeral', user: 'U1', text: done.reason }]);
    const failed = decide(
      approval({ state: 'failed', finishedAt: T0 + 5_000, outcome: 'exit 1' }),
      reject('U1'),
      T0 + 9_000,
    );
    expect(failed.reason).toMatch(/^This action already ran: failed at 22:00:05 UTC \(exit 1\)\./);
  });

  it('tells the clicking user, and only them, why a click was refused', () => {
    const d = decide(approval(), approve('U1', DENIED), T0);
    expect(d.effects).toEqual([{ kind: 'ephemeral', user: 'U1', text: d.reason }]);
    expect(d.reason).toMatch(/not one of the configured approvers/);
  });

  it('emits start-run only on the transition to approved; start-run stamps startedAt', () => {
    const a = decide(approval(), approve('U1'), T0 + 5);
    expect(effectKinds(a)).toEqual(['update-card', 'start-run']);
    expect(a.next.approvers).toEqual([{ user: 'U1', at: T0 + 5 }]);
    const s = decide(a.next, { kind: 'start-run' }, T0 + 6);
    expect(effectKinds(s)).toEqual(['update-card']);
    expect(s.next.startedAt).toBe(T0 + 6);
    const f = decide(s.next, finishOk, T0 + 9);
    expect(f.next).toMatchObject({
      state: 'succeeded',
      finishedAt: T0 + 9,
      outcome: 'restarted, verified',
      version: 3,
    });
  });

  it('crash recovery says whether anything may have run and posts a thread notice', () => {
    const running = decide(approval({ state: 'running', startedAt: T0 }), { kind: 'crash-recovery' }, T0 + 1);
    expect(running.next.outcome).toMatch(/may have partly run/);
    expect(effectKinds(running)).toEqual(['update-card', 'thread-notice']);
    const approved = decide(approval({ state: 'approved' }), { kind: 'crash-recovery' }, T0 + 1);
    expect(approved.next.outcome).toMatch(/before anything ran/);
  });

  it('names users with the mention function given', () => {
    const d = decide(approval(), approve('U1'), T0, { mention: (u) => `<@${u}>` });
    expect(d.reason).toBe('Approved by <@U1>: running now.');
  });
});

describe('decide: two-person actions', () => {
  const twoPerson = () => approval({ actionId: 'flush-redis', requiredApprovals: 2 });

  it('the requester cannot approve', () => {
    const d = decide(twoPerson(), approve('U0REQUESTER'), T0);
    expect(d).toMatchObject({ verdict: 'refused', code: 'requester-cannot-approve', changed: false });
    expect(d.reason).toMatch(/someone else/);
  });

  it('the requester may approve a one-person action', () => {
    expect(decide(approval(), approve('U0REQUESTER'), T0).code).toBe('approved');
  });

  it('stays pending with the first approver, then approves with a different second one', () => {
    const first = decide(twoPerson(), approve('U1'), T0 + 1);
    expect(first).toMatchObject({ verdict: 'accepted', code: 'approval-recorded' });
    expect(first.next.state).toBe('pending');
    expect(first.reason).toMatch(/1 of 2.*not U0REQUESTER/);
    expect(effectKinds(first)).toEqual(['update-card']);

    const same = decide(first.next, approve('U1'), T0 + 2);
    expect(same).toMatchObject({ verdict: 'refused', code: 'already-approved-by-you', changed: false });
    expect(same.reason).toMatch(/counts once/);

    const second = decide(first.next, approve('U2'), T0 + 3);
    expect(second.next.state).toBe('approved');
    expect(second.next.approvers.map((a) => a.user)).toEqual(['U1', 'U2']);
    expect(effectKinds(second)).toContain('start-run');
  });

  it('with the bot as requester, any two different approvers will do', () => {
    const a = approval({ requiredApprovals: 2, requester: 'bot' });
    const first = decide(a, approve('U1'), T0);
    expect(first.reason).not.toMatch(/requested/);
    expect(decide(first.next, approve('U2'), T0).next.state).toBe('approved');
  });
});

describe('decide: expiry', () => {
  it('a click after expiry is refused as expired, and expires the approval', () => {
    const d = decide(approval(), approve('U1'), T0 + TTL);
    expect(d).toMatchObject({ verdict: 'refused', code: 'expired', changed: true });
    expect(d.next.state).toBe('expired');
    expect(d.reason).toMatch(/expired at 2026-01-24T22:15:00Z/);
    expect(d.effects).toEqual([
      { kind: 'update-card', buttons: false },
      { kind: 'ephemeral', user: 'U1', text: d.reason },
    ]);
  });

  it('a click one millisecond before expiry still counts', () => {
    expect(decide(approval(), approve('U1'), T0 + TTL - 1).code).toBe('approved');
  });

  it('the expire timer only expires what is due', () => {
    expect(decide(approval(), { kind: 'expire' }, T0 + TTL - 1).code).toBe('not-yet-expired');
    const d = decide(approval(), { kind: 'expire' }, T0 + TTL);
    expect(d.next).toMatchObject({ state: 'expired', finishedAt: T0 + TTL });
    expect(d.effects).toEqual([{ kind: 'update-card', buttons: false }]);
  });

  it('an unauthorized click after expiry says expired (time is not a secret)', () => {
    expect(decide(approval(), approve('U666', DENIED), T0 + TTL + 1).code).toBe('expired');
  });
});

describe('compare-and-set: concurrent clicks execute exactly once', () => {
  it.each([1, 2, 3])('50 concurrent approvals (%i required) → one start-run', async (required) => {
    const store = new MemoryApprovalStore();
    const a = approval({ requiredApprovals: required });
    await store.insertApproval(a);
    // Every handler read the record before any wrote: all hold version 0.
    const snapshots = await Promise.all(Array.from({ length: 50 }, () => store.approvalById(a.id)));
    const decisions: Decision[] = [];
    let conflicts = 0;
    for (const [i, snapshot] of snapshots.entries()) {
      let seen = snapshot;
      for (;;) {
        if (seen === undefined) throw new Error('lost');
        const d = decide(seen, approve(`U${String(i).padStart(3, '0')}`), T0 + i);
        if (!d.changed || (await store.compareAndSetApproval(d.next, seen.version))) {
          decisions.push(d);
          break;
        }
        conflicts += 1;
        seen = await store.approvalById(a.id);
      }
    }
    const starts = decisions.filter((d) => d.effects.some((e) => e.kind === 'start-run'));
    expect(starts).toHaveLength(1);
    expect(conflicts).toBeGreaterThan(0);
    expect((await store.approvalById(a.id))?.approvers).toHaveLength(required);
    expect((await store.approvalById(a.id))?.version).toBe(required);
    expect(decisions.filter((d) => d.code === 'invalid-in-state')).toHaveLength(50 - required);
  });

  it('applyApprovalEvent: 50 clicks racing through the async store start one run', async () => {
    const store = new MemoryApprovalStore();
    const a = approval({ requiredApprovals: 2 });
    await store.insertApproval(a);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        applyApprovalEvent(store, a.id, approve(`U${String(i % 5).padStart(3, '0')}`), T0),
      ),
    );
    expect(results.flatMap((d) => d.effects).filter((e) => e.kind === 'start-run')).toHaveLength(1);
    expect((await store.approvalById(a.id))?.state).toBe('approved');
  });

  it('applyApprovalEvent: redelivered and duplicate clicks, then start-run once', async () => {
    const store = new MemoryApprovalStore();
    const a = approval({ requiredApprovals: 2 });
    await store.insertApproval(a);
    const opts = { audit: store };
    const results = [
      await applyApprovalEvent(store, a.id, approve('U1'), T0, opts),
      await applyApprovalEvent(store, a.id, approve('U1'), T0, opts), // redelivered envelope
      await applyApprovalEvent(store, a.id, approve('U2'), T0, opts),
      await applyApprovalEvent(store, a.id, approve('U2'), T0, opts), // double click
      await applyApprovalEvent(store, a.id, approve('U3'), T0, opts),
    ];
    expect(results.map((d) => d.code)).toEqual([
      'approval-recorded',
      'already-approved-by-you',
      'approved',
      'invalid-in-state',
      'invalid-in-state',
    ]);
    expect(results.flatMap((d) => d.effects).filter((e) => e.kind === 'start-run')).toHaveLength(1);
    expect((await applyApprovalEvent(store, a.id, { kind: 'start-run' }, T0)).code).toBe('started');
    expect((await applyApprovalEvent(store, a.id, { kind: 'start-run' }, T0)).code).toBe('invalid-in-state');
    expect(store.audit.map((e) => [e.actor, e.code])).toEqual([
      ['U1', 'approval-recorded'],
      ['U1', 'already-approved-by-you'],
      ['U2', 'approved'],
      ['U2', 'invalid-in-state'],
      ['U3', 'invalid-in-state'],
    ]);
    expect(store.audit[0]?.commands).toEqual(['pi-a: sudo systemctl restart nginx']);
  });

  it('applyApprovalEvent: an unknown id is a coded error', async () => {
    await expect(applyApprovalEvent(new MemoryApprovalStore(), 'ap_nope', approve('U1'), T0)).rejects.toThrow(
      expect.objectContaining({ code: 'OKOME_APPROVAL_NOT_FOUND' }),
    );
  });

  it('applyApprovalEvent: gives up with a coded error when the record never stops changing', async () => {
    const store = new MemoryApprovalStore();
    await store.insertApproval(approval());
    store.compareAndSetApproval = async () => false;
    await expect(
      applyApprovalEvent(store, approval().id, approve('U1'), T0, { maxAttempts: 3 }),
    ).rejects.toThrow(expect.objectContaining({ code: 'OKOME_APPROVAL_CONFLICT' }));
  });
});
