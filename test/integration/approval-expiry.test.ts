import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoopbackConfig, startCardBot } from '../support/bot-harness.js';
import type { SlackEmulator } from '../support/slack-emulator/index.js';

/** An approval clicked after its expiry: nothing runs, the clicker is told why, the card loses its buttons. */

let bot: Awaited<ReturnType<typeof startCardBot>> | undefined;
let emu: SlackEmulator;
let cfg: LoopbackConfig;

beforeAll(async () => {
  bot = await startCardBot((doc) => {
    (doc.slack as Record<string, unknown>).approvalTtlMs = 10_000;
  });
  ({ emu, cfg } = bot);
}, 30_000);

afterAll(async () => {
  await bot?.close();
});

describe('approval expiry', () => {
  it('a click after expiry runs nothing, says why, and is audited; the card loses its buttons', async () => {
    await emu.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
    const card = await emu.waitFor(
      () =>
        emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Restart redis-server on pi-b: pending')),
      20_000,
      'the restart-redis card',
    );
    const id = /"value":"(ap_[A-Za-z0-9]+)"/.exec(JSON.stringify(card.blocks))?.[1] ?? '';
    expect(id).toMatch(/^ap_/);
    // The sweep removes the buttons and says why…
    const updated = await emu.waitFor(
      () => {
        const m = emu.message('C0INCIDENT', card.ts);
        return m?.text.endsWith(': expired') ? m : undefined;
      },
      30_000,
      'the card to say expired',
    );
    expect(JSON.stringify(updated.blocks)).not.toContain('okome:approve:');
    expect(JSON.stringify(updated.blocks)).toMatch(/expired/);
    // …and a click from a client still showing the old card is refused with the reason.
    await emu.click({
      userId: 'U0APPROVER1',
      channelId: 'C0INCIDENT',
      messageTs: card.ts,
      actionId: `okome:approve:${id}`,
      value: id,
      seen: card,
    }).ack;
    await emu.waitFor(
      () => emu.ephemeralsIn('C0INCIDENT').find((e) => e.user === 'U0APPROVER1' && /expired/i.test(e.text)),
      10_000,
      'the refusal',
    );
    const db = new Database(cfg.config.store.path, { readonly: true });
    const audit = db.prepare('SELECT actor, event, code FROM audit WHERE approval_id = ?').all(id) as Array<{
      actor: string;
      event: string;
      code: string;
    }>;
    db.close();
    expect(audit.some((a) => a.actor === 'bot' && a.event === 'expire')).toBe(true);
    expect(audit.some((a) => a.actor === 'U0APPROVER1' && a.event === 'click-approve')).toBe(true);
    expect(audit.some((a) => a.event === 'execute-step' || a.event === 'start-run')).toBe(false);
  }, 60_000);
});
