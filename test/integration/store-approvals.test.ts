import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newApproval } from '../../src/domain/approval.js';
import { applyApprovalEvent, type auditEntry } from '../../src/remediation/approval-store.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';

let dir: string;
let store: SqliteStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okome-approvals-'));
  store = openSqliteStore({ path: join(dir, 'okome.db') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

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

describe('approvals in SQLite', () => {
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
    await store.close();
    const db = new Database(join(dir, 'okome.db'));
    expect(() => db.prepare('UPDATE audit SET reason = ?').run('edited')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    db.close();
    store = openSqliteStore({ path: join(dir, 'okome.db') });
    expect((await store.auditSince(0))[0]?.reason).toBe('x');
  });
});
