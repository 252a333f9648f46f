import { afterEach, expect, it } from 'vitest';
import {
  NODE_HEADER,
  SIGNATURE_HEADER,
  signHook,
  TIMESTAMP_HEADER,
} from '../../src/alerts/keepalived-hook.js';
import type { RunningApp } from '../../src/app.js';
import { type Drill, finishDrill, startDrill, type Transition } from '../../src/domain/drill.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { drillInput } from '../support/drill-fixtures.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * A failover while a failover drill runs is planned: the failover code asks the store (so any
 * replica would see the same drill), says the move in the drill's place, and opens no incident.
 * The same move once the drill has finished opens the failover incident as usual.
 */

const SECRET = 'keepalived-secret-drills-0123';
const CHANNEL = 'C0INCIDENT';
let cfg: LoopbackConfig | undefined;
let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let other: SqliteStore | undefined;
afterEach(async () => {
  await other?.close();
  await app?.stop({ graceMs: 500 });
  await emu?.close();
  cfg?.cleanup();
});

let nonce = 0;
async function transition(node: string, state: 'MASTER' | 'BACKUP'): Promise<number> {
  const body = JSON.stringify({ node, instance: 'VI_1', state, nonce: `drill-${++nonce}` });
  const ts = Math.floor(Date.now() / 1000);
  const res = await fetch(`http://127.0.0.1:${app?.httpPort}/hooks/keepalived`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [TIMESTAMP_HEADER]: String(ts),
      [NODE_HEADER]: node,
      [SIGNATURE_HEADER]: signHook(SECRET, ts, node, body),
    },
    body,
  });
  return res.status;
}

const ok = (t: Transition): Drill => {
  if (!t.ok) throw new Error(t.reason);
  return t.next;
};

it('the VIP moving during a failover drill is said as planned, no incident; after the drill the same move opens one', async () => {
  // No watcher: the hook alone tells who holds the VIP.
  cfg = await loopbackConfig((doc) => {
    doc.alerts = { vipWatch: { enabled: false } };
  });
  emu = await startSlackEmulator();
  app = await startInProcessBot(cfg.config, emu, {
    webhooks: { keepalivedSecrets: { shared: SECRET, perNode: new Map() } },
  });
  // The drill is written by another connection to the store, as another replica would.
  other = openSqliteStore({ path: cfg.config.store.path });
  const d = await other.insertDrill(drillInput('failover', Date.now()));
  const running = ok(startDrill(d, { ...d.approval, state: 'running' }, 'pi-a', Date.now()));
  expect(await other.compareAndSetDrill(running, d.version)).toBe(true);

  expect(await transition('pi-a', 'MASTER')).toBe(202);
  expect(await transition('pi-b', 'MASTER')).toBe(202);
  const planned = await emu.waitFor(
    () => emu?.messagesIn(CHANNEL).find((m) => m.text.includes('*planned*')),
    15_000,
    'the planned move',
  );
  expect(planned.text).toBe(
    `:information_source: VIP moved from pi-a to pi-b (keepalived) — *planned*: failover drill ${d.id}, no incident opened.`,
  );
  expect(await other.openIncidents()).toEqual([]);

  // The drill over: the VIP comes back, then moves again, a real failover.
  expect(
    await other.compareAndSetDrill(
      ok(finishDrill(running, 'completed', 'done', Date.now())),
      running.version,
    ),
  ).toBe(true);
  expect(await transition('pi-a', 'MASTER')).toBe(202);
  expect(await transition('pi-b', 'MASTER')).toBe(202);
  await emu.waitFor(
    async () => ((await other?.openIncidents()) ?? []).find((i) => i.key === 'failover:pi-a'),
    15_000,
    'the failover incident',
  );
  expect(emu.messagesIn(CHANNEL).filter((m) => m.text.includes('*planned*'))).toHaveLength(1);
});
