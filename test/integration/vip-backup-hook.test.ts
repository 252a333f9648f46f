import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { postTransition, timelineNotices } from '../support/keepalived-hooks.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * A node cut off without leaving MASTER sends no hook when it comes back: the old holder's
 * BACKUP hook is the only word that the VIP is home. The bot records it (and says the VIP is
 * back), so the next failover to that holder is said, not taken for a repeat of the last one.
 * No watcher here: the hooks alone tell (the lab's storm case lost that failover when its
 * watcher could not see pi-a come back before pi-a failed again).
 */

const SECRET = 'keepalived-secret-0123456789';
const webhooks = { keepalivedSecrets: { shared: SECRET, perNode: new Map() } };

let cfg: LoopbackConfig | undefined;
let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let store: SqliteStore | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 500 }).catch(() => {});
  await emu?.close();
  await store?.close();
  cfg?.cleanup();
  app = undefined;
  emu = undefined;
  store = undefined;
  cfg = undefined;
});

async function start(): Promise<{ app: RunningApp; emu: SlackEmulator; store: SqliteStore }> {
  cfg = await loopbackConfig((doc) => {
    doc.alerts = { vipWatch: { enabled: false } };
  });
  emu = await startSlackEmulator();
  app = await startInProcessBot(cfg.config, emu, { webhooks });
  store = openSqliteStore({ path: cfg.config.store.path });
  return { app, emu, store };
}

const MOVED = 'VIP moved from pi-a to pi-b (keepalived)';
const BACK = 'VIP back on pi-a';

describe('keepalived BACKUP from the holder on record', () => {
  it('pi-a returns without a hook, pi-b goes BACKUP, pi-a fails again: back said, and the second failover said too', async () => {
    const { app, emu, store } = await start();
    const send = async (node: string, state: string) =>
      expect((await postTransition(app, SECRET, node, state)).status).toBe(202);
    const notices = () => timelineNotices(store);
    await send('pi-a', 'MASTER');
    await send('pi-b', 'MASTER');
    await emu.waitFor(async () => ((await notices()).includes(MOVED) ? true : undefined), 10_000, 'the move');
    // pi-a was cut off holding the VIP and is back: no hook from it; pi-b steps down.
    await send('pi-b', 'BACKUP');
    await emu.waitFor(async () => ((await notices()).includes(BACK) ? true : undefined), 10_000, 'VIP back');
    expect((await store.vipHolder())?.holder).toBe('pi-a');
    await emu.waitFor(
      async () => ((await store.incidentById(1))?.status === 'resolved' ? true : undefined),
      10_000,
      'the failover incident resolved',
    );
    // pi-a fails for real: pi-b takes the VIP again. Said, in the (reopened) failover incident.
    await send('pi-b', 'MASTER');
    await emu.waitFor(
      async () => ((await notices()).filter((t) => t === MOVED).length === 2 ? true : undefined),
      10_000,
      'the second failover',
    );
    expect((await store.incidentById(1))?.status).toBe('open');
    expect(await notices()).toEqual([MOVED, BACK, MOVED]);
  }, 60_000);

  it('a BACKUP from a node not holding the VIP on record, or stamped before the record, changes nothing', async () => {
    const { app, emu, store } = await start();
    const send = async (node: string, state: string, at?: Date) =>
      expect((await postTransition(app, SECRET, node, state, at)).status).toBe(202);
    await send('pi-a', 'MASTER');
    await send('pi-b', 'MASTER');
    await emu.waitFor(
      async () => ((await timelineNotices(store)).includes(MOVED) ? true : undefined),
      10_000,
      'the move',
    );
    // pi-b's BACKUP from before it became MASTER, arriving late (the script stamps seconds).
    await send('pi-b', 'BACKUP', new Date(Date.now() - 5000));
    // pi-a (not the holder on record) going BACKUP says nothing new either.
    await send('pi-a', 'BACKUP');
    // Both hooks handled (the inbox is empty) before judging "nothing".
    await emu.waitFor(
      async () => ((await store.inbox('keepalived')).length === 0 ? true : undefined),
      10_000,
      'the hooks handled',
    );
    expect((await store.vipHolder())?.holder).toBe('pi-b');
    expect(await timelineNotices(store)).toEqual([MOVED]);
    expect((await store.incidentById(1))?.status).toBe('open');
  }, 60_000);
});
