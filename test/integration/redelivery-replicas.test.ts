import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { type LoopbackConfig, loopbackConfig, startInProcessReplicas } from '../support/bot-harness.js';
import { redisDownAlert } from '../support/lab/alertmanager.js';
import { queryOnce } from '../support/replicas.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * Redelivery across replicas (issue 21): three apps on one PostgreSQL, each with its own pool and
 * Socket Mode connection, the emulator dealing envelopes round-robin as Slack spreads them. What
 * Slack sends again (an envelope whose ack was late, with retry_attempt and retry_reason) reaches
 * another replica than the first copy, and Alertmanager's HA peers (or a retry) may post the same
 * alert to two replicas: each is handled once, through the seen marks in the shared store, never
 * a replica's memory.
 */

const TOKEN = 'alertmanager-token-0123456789';
const db = await scratchPostgresDatabase('the redelivery replicas test');

let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
let apps: RunningApp[] = [];
afterEach(async () => {
  for (const app of apps) await app.stop({ graceMs: 1000 });
  apps = [];
  await emu?.close();
  cfg?.cleanup();
  emu = cfg = undefined;
});
afterAll(() => db?.drop());

async function start(): Promise<{ slack: SlackEmulator; url: string }> {
  if (db === undefined) throw new Error('no PostgreSQL');
  await queryOnce(db.url, 'DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  const slack = await startSlackEmulator({ spread: 'round-robin' });
  emu = slack;
  const config = await loopbackConfig((doc) => {
    doc.store = { kind: 'postgres', replicas: true };
  });
  cfg = config;
  apps = await startInProcessReplicas(config.config, slack, db.url, 3, {
    webhooks: { alertmanagerToken: TOKEN },
  });
  expect(slack.socketConnections).toBe(3);
  return { slack, url: db.url };
}

async function outboxDrained(url: string): Promise<true | undefined> {
  const rows = await queryOnce(url, "SELECT 1 FROM outbox WHERE state = 'pending'");
  return rows.length === 0 ? true : undefined;
}

describe.skipIf(db === undefined)('redelivery on three replicas', () => {
  it('a slash command redelivered (late ack) to another replica is answered once', async () => {
    const { slack, url } = await start();
    const first = slack.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' });
    // Slack's retry before the first ack came back: both copies are in flight at once.
    const again = slack.redeliver(first.envelopeId, 'timeout');
    await Promise.all([first.ack, again.ack]);
    const [one, two] = slack.envelopes.filter((e) => e.firstEnvelopeId === first.envelopeId);
    expect(two).toMatchObject({ retryAttempt: 1, retryReason: 'timeout', delivered: true });
    // Another replica's connection got the retry.
    expect(one?.connection).toBeDefined();
    expect(two?.connection).not.toBe(one?.connection);

    await slack.waitFor(
      () => (slack.messagesIn('C0OPS').length > 0 ? true : undefined),
      30_000,
      'the status',
    );
    await slack.waitFor(() => outboxDrained(url), 30_000, 'the outbox drained');
    // One status in the channel: the copy that lost the race on the seen mark said nothing.
    expect(slack.messagesIn('C0OPS').filter((m) => m.threadTs === undefined)).toHaveLength(1);
    const marks = await queryOnce(url, "SELECT key FROM seen_events WHERE key LIKE 'cmd:%'");
    expect(marks).toHaveLength(1);
  }, 90_000);

  it('the same Alertmanager notification posted to two replicas at once is stored and posted once', async () => {
    const { slack, url } = await start();
    const body = JSON.stringify(redisDownAlert('firing', new Date().toISOString()));
    const post = (app: RunningApp | undefined) =>
      fetch(`http://127.0.0.1:${app?.httpPort}/alerts/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      }).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }));
    const answers = await Promise.all([post(apps[0]), post(apps[1])]);
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    expect(answers.map((a) => a.json).sort((a, b) => Number(b.accepted) - Number(a.accepted))).toEqual([
      { accepted: 1, duplicates: 0 },
      { accepted: 0, duplicates: 1 },
    ]);
    const alerts = await queryOnce(url, 'SELECT fingerprint FROM incident_alerts');
    expect(alerts).toEqual([{ fingerprint: 'c0ffee0000000001' }]);
    await slack.waitFor(
      () => (slack.messagesIn('C0INCIDENT').length > 0 ? true : undefined),
      30_000,
      "the alert's incident posted",
    );
    await slack.waitFor(() => outboxDrained(url), 30_000, 'the outbox drained');
    const roots = slack.messagesIn('C0INCIDENT').filter((m) => m.threadTs === undefined);
    expect(roots).toHaveLength(1);
  }, 90_000);
});
