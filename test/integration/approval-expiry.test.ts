import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** An approval clicked after its expiry: nothing runs, the clicker is told why, the card loses its buttons. */

let orchestrator: Server;
let emu: SlackEmulator;
let app: RunningApp;
let cfg: LoopbackConfig;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>>;

beforeAll(async () => {
  // A healthy orchestrator, so golden rule 1 does not hold the Redis action back.
  orchestrator = createServer((_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((r) => orchestrator.listen(0, '127.0.0.1', r));
  const port = (orchestrator.address() as AddressInfo).port;
  emu = await startSlackEmulator();
  // pi-b answers HTTP: with both Pis silent there would be no Pi to act on (no card at all).
  piHttp = await answeringPiHttp();
  cfg = await loopbackConfig((doc) => {
    piHttp.override(doc);
    doc.orchestrator = { baseUrl: `http://127.0.0.1:${port}` };
    (doc.slack as Record<string, unknown>).approvalTtlMs = 10_000;
  });
  app = await startInProcessBot(cfg.config, emu);
}, 30_000);

afterAll(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  await new Promise((r) => orchestrator?.close(r));
  await piHttp?.close();
  cfg?.cleanup();
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
