import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { postgresLeadership } from '../../src/store/postgres-leader.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';
import { ManualClock } from '../unit/outbox-fakes.js';

/**
 * The dead-man's switch through the real webhook: Watchdog deliveries (new and repeated) keep it
 * alive and open nothing; overdue, one notice in the incident channel; back, one more. Time is
 * a manual clock given to the app: nothing waits for real minutes. The same on SQLite, on
 * PostgreSQL (one bot) and on PostgreSQL with replicas (the switch runs on the elected leader,
 * its notices written in the leader's term).
 */

type StoreKind = 'sqlite' | 'postgres' | 'postgres replicas';
const db = await scratchPostgresDatabase("the dead-man's switch on PostgreSQL");
afterAll(() => db?.drop());
const kinds: StoreKind[] = db === undefined ? ['sqlite'] : ['sqlite', 'postgres', 'postgres replicas'];

async function emptySchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  } finally {
    await client.end();
  }
}

const TOKEN = 'alertmanager-webhook-token-0123';
const CHANNEL = 'C0INCIDENT';
const TIMEOUT = 10 * 60_000;

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function watchdogBatch(startsAt: string) {
  const labels = { alertname: 'Watchdog', severity: 'none' };
  return {
    version: '4',
    groupKey: '{}:{alertname="Watchdog"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'okome-watchdog',
    groupLabels: { alertname: 'Watchdog' },
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: 'http://alertmanager.test:9093',
    alerts: [
      {
        status: 'firing',
        labels,
        annotations: { summary: 'always firing' },
        startsAt,
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: 'e0d1f4a2b3c4d5e6',
      },
    ],
  };
}

async function boot(kind: StoreKind): Promise<{
  emu: SlackEmulator;
  app: RunningApp;
  clock: ManualClock;
  cfg: LoopbackConfig;
}> {
  const emu = await startSlackEmulator();
  cleanups.push(() => emu.close());
  const cfg = await loopbackConfig((doc) => {
    doc.alerts = { deadman: { enabled: true, timeoutMs: TIMEOUT }, vipWatch: { enabled: false } };
  });
  cleanups.push(() => cfg.cleanup());
  const clock = new ManualClock(Date.now());
  let options = {};
  if (kind !== 'sqlite' && db !== undefined) {
    await emptySchema(db.url);
    const store = await openPostgresStore({ url: db.url });
    options =
      kind === 'postgres'
        ? { store }
        : {
            store,
            replica: { name: 'only', leadership: postgresLeadership({ url: db.url, holder: 'only' }) },
          };
  }
  const app = await startInProcessBot(cfg.config, emu, {
    webhooks: { alertmanagerToken: TOKEN },
    clock,
    ...options,
  });
  cleanups.push(() => app.stop({ graceMs: 2000 }));
  // Replicas: the switch runs once this replica is elected.
  await emu.waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
      return ((await r.json()) as { role: string }).role === 'leader';
    },
    5000,
    'the leader',
  );
  return { emu, app, clock, cfg };
}

async function deliver(app: RunningApp, body: unknown): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}/alerts/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  await r.text();
  expect(r.status).toBe(202);
}

async function deadmanState(app: RunningApp): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
  return ((await r.json()) as { deadman: string }).deadman;
}

describe.each(kinds)("dead-man's switch through the Alertmanager webhook (%s)", (kind) => {
  it('Watchdog keeps it alive and opens nothing; overdue → one "down" notice; back → one "back" notice', async () => {
    const { emu, app, clock } = await boot(kind);
    expect(await deadmanState(app)).toBe('waiting');
    await deliver(app, watchdogBatch('2026-12-02T03:00:00Z'));
    await emu.waitFor(async () => (await deadmanState(app)) === 'alive', 5000, 'the Watchdog seen');
    // Alertmanager repeats it (same startsAt: a duplicate for the webhook) every repeat_interval.
    for (let i = 0; i < 3; i++) {
      await clock.advance(TIMEOUT / 2);
      await deliver(app, watchdogBatch('2026-12-02T03:00:00Z'));
    }
    await clock.advance(TIMEOUT - 1);
    expect(await deadmanState(app)).toBe('alive');
    expect(emu.messagesIn(CHANNEL)).toEqual([]);

    await clock.advance(1);
    const down = await emu.waitFor(
      () => emu.messagesIn(CHANNEL).find((m) => m.text.includes('The monitoring path is down')),
      5000,
      'the "down" notice',
    );
    expect(down.text).toContain('`Watchdog`');
    expect(await deadmanState(app)).toBe('lost');
    await clock.advance(5 * TIMEOUT);

    // Alertmanager restarted: a new startsAt, a new alert for the webhook.
    await deliver(app, watchdogBatch('2026-12-02T05:00:00Z'));
    const back = await emu.waitFor(
      () => emu.messagesIn(CHANNEL).find((m) => m.text.includes('The monitoring path is back')),
      5000,
      'the "back" notice',
    );
    expect(await deadmanState(app)).toBe('alive');
    await deliver(app, watchdogBatch('2026-12-02T05:00:00Z'));
    await clock.advance(TIMEOUT / 2);
    // Exactly the two notices: no repeats, and no incident (root, thread or summary) for Watchdog.
    expect(emu.messagesIn(CHANNEL).map((m) => m.ts)).toEqual([down.ts, back.ts]);
    expect(emu.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(2);
  });
});

describe.skipIf(db === undefined)("dead-man's switch on two replicas", () => {
  it('a Watchdog sent to the standby keeps the leader alive; the next leader goes on from "down" without saying it twice', async () => {
    if (db === undefined) return;
    await emptySchema(db.url);
    const emu = await startSlackEmulator();
    cleanups.push(() => emu.close());
    const cfg = await loopbackConfig((doc) => {
      doc.alerts = { deadman: { enabled: true, timeoutMs: TIMEOUT }, vipWatch: { enabled: false } };
      doc.store = { kind: 'postgres', replicas: true };
    });
    cleanups.push(() => cfg.cleanup());
    const clock = new ManualClock(Date.now());
    const url = db.url;
    const start = async (name: string) => {
      const app = await startInProcessBot(cfg.config, emu, {
        webhooks: { alertmanagerToken: TOKEN },
        clock,
        store: await openPostgresStore({ url }),
        replica: { name, leadership: postgresLeadership({ url, holder: name }) },
      });
      let stopped = false;
      cleanups.push(() => (stopped ? undefined : app.stop({ graceMs: 2000 })));
      const stop = () => {
        stopped = true;
        return app.stop({ graceMs: 2000 });
      };
      return { app, stop };
    };
    const health = async (app: RunningApp) =>
      (await (await fetch(`http://127.0.0.1:${app.httpPort}/healthz`)).json()) as {
        role: string;
        deadman: string;
      };
    const replicas = [await start('a'), await start('b')];
    const leader = await emu.waitFor(
      async () => {
        for (const r of replicas) if ((await health(r.app)).role === 'leader') return r;
        return undefined;
      },
      5000,
      'a leader',
    );
    const standby = replicas.find((r) => r !== leader);
    if (standby === undefined) throw new Error('no standby');
    // Alertmanager reaches the standby only: the leader's switch hears of it through the store.
    await deliver(standby.app, watchdogBatch('2026-12-02T03:00:00Z'));
    await emu.waitFor(
      async () => (await health(leader.app)).deadman === 'alive',
      5000,
      'the leader to see it',
    );
    await clock.advance(TIMEOUT);
    const downs = () => emu.messagesIn(CHANNEL).filter((m) => m.text.includes('The monitoring path is down'));
    await emu.waitFor(() => downs().length === 1, 5000, 'the "down" notice');

    // The leader goes; the standby takes over, already knowing the path is down.
    await leader.stop();
    await emu.waitFor(async () => (await health(standby.app)).role === 'leader', 5000, 'the next leader');
    await emu.waitFor(
      async () => (await health(standby.app)).deadman === 'lost',
      5000,
      'the switch taken over',
    );
    await clock.advance(2 * TIMEOUT);
    await new Promise((r) => setTimeout(r, 300));
    expect(downs()).toHaveLength(1);

    await deliver(standby.app, watchdogBatch('2026-12-02T05:00:00Z'));
    await emu.waitFor(
      () => emu.messagesIn(CHANNEL).find((m) => m.text.includes('The monitoring path is back')),
      5000,
      'the "back" notice',
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(emu.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(2);
  }, 60_000);
});
