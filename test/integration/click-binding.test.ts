import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoopbackConfig, startCardBot } from '../support/bot-harness.js';
import type { SlackEmulator } from '../support/slack-emulator/index.js';

/**
 * A click counts only from the message the bot put its button on: an approver's signed click
 * carrying another channel or another message ts runs nothing and is audited (the real Bolt,
 * over Socket Mode, against the emulator).
 */

let bot: Awaited<ReturnType<typeof startCardBot>> | undefined;
let emu: SlackEmulator;
let cfg: LoopbackConfig;

beforeAll(async () => {
  bot = await startCardBot();
  ({ emu, cfg } = bot);
}, 30_000);

afterAll(async () => {
  await bot?.close();
});

interface AuditRow {
  readonly actor: string;
  readonly event: string;
  readonly verdict: string;
  readonly code: string;
}

function query<T>(sql: string, ...args: unknown[]): T[] {
  const db = new Database(cfg.config.store.path, { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

const approvalState = (id: string) =>
  query<{ state: string }>(
    "SELECT json_extract(record, '$.state') AS state FROM approvals WHERE id = ?",
    id,
  )[0]?.state;

describe('clicks are bound to the card they came from', () => {
  it("an approver's click carrying another channel or message ts runs nothing and is audited; from the card it counts", async () => {
    await emu.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
    const card = await emu.waitFor(
      () =>
        emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Restart redis-server on pi-b: pending')),
      20_000,
      'the restart-redis card',
    );
    const id = /"value":"(ap_[A-Za-z0-9]+)"/.exec(JSON.stringify(card.blocks))?.[1] ?? '';
    expect(id).toMatch(/^ap_/);
    const summary = await emu.waitFor(
      () => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')),
      10_000,
    );
    const elsewhere = [
      { channelId: 'C0OPS', messageTs: summary.ts },
      { channelId: 'C0INCIDENT', messageTs: summary.ts },
      { channelId: 'C0OPS', messageTs: card.ts },
    ];
    for (const [i, where] of elsewhere.entries()) {
      // The client shows the real card (`seen`): the payload carries its button, signed and valid.
      await emu.click({
        userId: 'U0APPROVER1',
        ...where,
        actionId: `okome:approve:${id}`,
        value: id,
        seen: card,
      }).ack;
      await emu.waitFor(
        () =>
          query<AuditRow>('SELECT code FROM audit WHERE approval_id = ? AND code = ?', id, 'not-from-card')
            .length ===
          i + 1,
        10_000,
        `the refusal of click ${i + 1} in the audit`,
      );
    }
    expect(approvalState(id)).toBe('pending');
    const refused = query<AuditRow>(
      'SELECT actor, event, verdict, code FROM audit WHERE approval_id = ? AND verdict = ?',
      id,
      'refused',
    );
    expect(refused).toEqual(
      elsewhere.map(() => ({
        actor: 'U0APPROVER1',
        event: 'click-approve',
        verdict: 'refused',
        code: 'not-from-card',
      })),
    );
    expect(emu.message('C0INCIDENT', card.ts)?.text).toBe('Restart redis-server on pi-b: pending');

    // The same approver's click from the card itself is decided.
    await emu.click({
      userId: 'U0APPROVER1',
      channelId: 'C0INCIDENT',
      messageTs: card.ts,
      actionId: `okome:approve:${id}`,
    }).ack;
    await emu.waitFor(() => approvalState(id) !== 'pending', 10_000, 'the approval to leave pending');
    expect(
      query<AuditRow>(
        'SELECT actor, event, verdict, code FROM audit WHERE approval_id = ? AND actor = ? AND verdict = ?',
        id,
        'U0APPROVER1',
        'accepted',
      ),
    ).toHaveLength(1);
  }, 60_000);

  it("an Ack click carrying another message than the incident's root acknowledges nothing", async () => {
    const root = await emu.waitFor(
      () =>
        emu
          .messagesIn('C0INCIDENT')
          .find((m) => m.threadTs === undefined && JSON.stringify(m.blocks).includes('okome:ack:')),
      20_000,
      'an incident root with its Ack button',
    );
    const actionId = /"action_id":"(okome:ack:\d+)"/.exec(JSON.stringify(root.blocks))?.[1] ?? '';
    const incidentId = Number(actionId.split(':')[2]);
    const other = emu.messagesIn('C0OPS')[0];
    if (other === undefined) throw new Error('no message in C0OPS');
    await emu.click({ userId: 'U0APPROVER2', channelId: 'C0OPS', messageTs: other.ts, actionId, seen: root })
      .ack;
    await emu.waitFor(
      () =>
        query<AuditRow>(
          "SELECT code FROM audit WHERE event = 'acknowledge' AND incident_id = ? AND code = 'not-from-card'",
          incidentId,
        ).length === 1,
      10_000,
      'the refused Ack in the audit',
    );
    const acked = () =>
      query<{ by: string | null }>('SELECT acknowledged_by AS by FROM incidents WHERE id = ?', incidentId)[0]
        ?.by;
    expect(acked()).toBeNull();
    // From the root itself, it counts.
    await emu.click({ userId: 'U0APPROVER2', channelId: 'C0INCIDENT', messageTs: root.ts, actionId }).ack;
    await emu.waitFor(() => acked() === 'U0APPROVER2', 10_000, 'the Ack');
  }, 60_000);
});
