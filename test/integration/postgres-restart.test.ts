import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { alertStorm, outboxDrained, stormFacts } from '../support/alert-storm.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { type PostgresCluster, postgresBinDir, startPostgresCluster } from '../support/launchers/postgres.js';
import { type ReplicaSet, startReplicaSet } from '../support/replicas.js';
import { missingTool } from '../support/required-tools.js';
import { type SlackEmulator, startSlackEmulator, waitFor } from '../support/slack-emulator/index.js';

/**
 * PostgreSQL restarted under load (issue 21): the bot's pool reconnects by itself, every alert
 * answered 2xx is in the store exactly once, one refused meanwhile is answered 5xx (so
 * Alertmanager sends it again) and none is lost, and every post still reaches Slack once.
 */

const TOKEN = 'alertmanager-token-0123456789';
const missing =
  postgresBinDir() === undefined
    ? 'Debian PostgreSQL server binaries (initdb, postgres) are not installed'
    : missingTool(['setpriv']);

let cluster: PostgresCluster | undefined;
let app: RunningApp | undefined;
let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
let set: ReplicaSet | undefined;
afterEach(async () => {
  await app?.stop({ graceMs: 1000 }).catch(() => {});
  await set?.stop();
  await emu?.close();
  await cluster?.stop();
  cfg?.cleanup();
  app = emu = cluster = cfg = set = undefined;
});

async function json(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

function batch(fingerprint: string) {
  const labels = { alertname: 'StormTest', shard: fingerprint };
  return {
    version: '4',
    groupKey: `{}:{alertname="StormTest",shard="${fingerprint}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'okome',
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels,
        annotations: {},
        startsAt: '2026-12-02T03:12:07.1Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus/graph',
        fingerprint,
      },
    ],
  };
}

describe('PostgreSQL restarted under load', () => {
  if (missing !== undefined && process.env.OKOME_REQUIRE_LAB === '1') {
    it('runs because OKOME_REQUIRE_LAB=1 requires it', () => {
      throw new Error(`did not run: ${missing}`);
    });
    return;
  }
  if (missing !== undefined) console.warn(`PostgreSQL restart test did not run: ${missing}`);

  it.skipIf(missing !== undefined)(
    'alerts keep flowing: 2xx ones stored once, refused ones answered 5xx and stored when sent again, posts delivered once',
    async () => {
      cluster = await startPostgresCluster();
      emu = await startSlackEmulator();
      cfg = await loopbackConfig();
      const store = await openPostgresStore({ url: cluster.url });
      app = await startInProcessBot(cfg.config, emu, { store, webhooks: { alertmanagerToken: TOKEN } });
      const running = app;
      const post = async (fingerprint: string): Promise<number> => {
        try {
          const r = await fetch(`http://127.0.0.1:${running.httpPort}/alerts/alertmanager`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify(batch(fingerprint)),
            signal: AbortSignal.timeout(15_000),
          });
          await r.text();
          return r.status;
        } catch {
          return 0;
        }
      };

      // Alertmanager's side: each group sent until answered 2xx, as it retries a failed notification.
      const statuses: number[] = [];
      const deliver = async (fingerprint: string) => {
        for (let attempt = 0; attempt < 60; attempt++) {
          const status = await post(fingerprint);
          statuses.push(status);
          if (status >= 200 && status < 300) return;
          await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`alert ${fingerprint} never accepted`);
      };
      const fingerprints = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(3, '0')}`);
      const senders = (async () => {
        for (const [i, fingerprint] of fingerprints.entries()) {
          await deliver(fingerprint);
          if (i % 4 === 3) await new Promise((r) => setTimeout(r, 50));
        }
      })();
      // Restart once the stream is under way.
      await emu.waitFor(() => statuses.length >= 8 || undefined, 30_000, 'the first alerts answered');
      await cluster.restart();
      await senders;

      const admin = new pg.Client({ connectionString: cluster.url });
      admin.on('error', () => {});
      await admin.connect();
      try {
        const stored = await admin.query<{ fingerprint: string; n: number }>(
          'SELECT fingerprint, count(*)::int AS n FROM incident_alerts GROUP BY fingerprint ORDER BY fingerprint',
        );
        expect(stored.rows.map((r) => r.fingerprint)).toEqual(fingerprints);
        expect(stored.rows.every((r) => r.n === 1)).toBe(true);
        // Every message the bot meant to post reaches Slack once, after the restart too.
        await emu.waitFor(
          async () =>
            Number(
              (await admin.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE state = 'pending'"))
                .rows[0]?.n,
            ) === 0 || undefined,
          30_000,
          'the outbox drained',
        );
        const posts = await admin.query<{ ts: string }>('SELECT ts FROM messages WHERE ts IS NOT NULL');
        const timestamps = posts.rows.map((r) => r.ts);
        expect(new Set(timestamps).size).toBe(timestamps.length);
        const inSlack = emu.callsTo('chat.postMessage').filter((c) => c.response.ok === true).length;
        expect(inSlack).toBe(timestamps.length);
      } finally {
        await admin.end();
      }
      // The outage was seen (some deliveries refused), and nothing was accepted that was lost.
      expect(statuses.some((s) => s >= 500 || s === 0)).toBe(true);
      const ready = await fetch(`http://127.0.0.1:${running.httpPort}/readyz`);
      expect(ready.status).toBe(200);
      await ready.text();
    },
    120_000,
  );

  it.skipIf(missing !== undefined)(
    'three replicas under an alert storm, PostgreSQL down 4 s: all reconnect, one leader again, nothing lost or doubled, /readyz 200 on each',
    async () => {
      cluster = await startPostgresCluster();
      emu = await startSlackEmulator({ spread: 'round-robin' });
      set = await startReplicaSet({
        count: 3,
        databaseUrl: cluster.url,
        emu,
        alertmanagerToken: TOKEN,
        edit: (doc) => {
          doc.alerts = { vipWatch: { enabled: false } };
          (doc.slack as Record<string, unknown>).postPacing = { intervalMs: 50 };
        },
      });
      await set.serving();
      const { token } = await set.leader();
      const targets = set.replicas.map((r) => r.baseUrl);
      const db = cluster;
      let restarted: Promise<void> | undefined;
      const storm = await alertStorm({
        alerts: 3000,
        groups: 20,
        perNotification: 50,
        targets: () => targets,
        token: TOKEN,
        // Spread over ~6 s so the outage lands in the middle of it.
        spacingMs: 100,
        onAccepted: (n) => {
          // Down longer than the leader's 3 s lease: the leadership lapses and is won again.
          if (n === 10) restarted = db.restart({ downMs: 4000 });
        },
      });
      await restarted;
      // Every replica is still up, ready again, and one of them leads.
      const replicas = set.replicas;
      expect(replicas.map((r) => r.child.exitCode)).toEqual([null, null, null]);
      for (const r of replicas)
        await waitFor(
          async () => (await json(`${r.baseUrl}/readyz`)).status === 200,
          30_000,
          `${r.baseUrl} ready`,
          200,
        );
      const { replica: leader, token: after } = await set.leader(15_000);
      const roles = await Promise.all(
        replicas.map(async (r) => (await json(`${r.baseUrl}/healthz`)).body.role),
      );
      expect(roles.filter((role) => role === 'leader')).toEqual(['leader']);
      expect(roles[replicas.indexOf(leader)]).toBe('leader');
      expect(after).toBeGreaterThan(token);
      await waitFor(() => outboxDrained(db.url), 60_000, 'the outbox drained', 250);
      const facts = await stormFacts(db.url, emu, storm.fingerprints, 'C0INCIDENT');
      console.info(
        `PostgreSQL restarted under 3 replicas: answers ${JSON.stringify(Object.fromEntries(storm.statuses))}, leader token ${token} → ${after}; ${JSON.stringify(facts, (k, v) => (k === 'missing' || k === 'duplicatePosts' ? v.length : v))}`,
      );
      // The outage was seen: some notifications refused and sent again.
      expect([...storm.statuses.keys()].some((s) => s === 0 || s >= 500)).toBe(true);
      expect(facts.missing).toEqual([]);
      expect(facts.alertRows).toBe(3000);
      expect(facts.alertsStoredTwice).toBe(0);
      expect(facts.timelineAlerts).toBe(3000);
      expect(facts.timelineTwice).toBe(0);
      expect(facts.outbox).toMatchObject({ pending: 0, failed: 0 });
      expect(facts.slackPosts).toBe(facts.outbox.postsSent);
      expect(facts.roots).toBe(facts.incidents);
      // At least once: a diagnosis whose completion could not be written while PostgreSQL was
      // down runs again after it (a second status report in that thread); nothing else repeats.
      expect(facts.duplicatePosts.filter((p) => !/^[\d.]+: OKOME status/.test(p))).toEqual([]);
      expect(facts.duplicatePosts.length).toBeLessThanOrEqual(facts.incidents);
      for (const r of replicas) expect((await json(`${r.baseUrl}/readyz`)).status).toBe(200);
    },
    180_000,
  );
});
