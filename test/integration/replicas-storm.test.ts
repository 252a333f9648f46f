import { afterEach, describe, expect, it } from 'vitest';
import { alertStorm, outboxDrained, stormFacts } from '../support/alert-storm.js';
import { type ReplicaSet, startReplicaSet } from '../support/replicas.js';
import { type SlackEmulator, startSlackEmulator, waitFor } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * Alert storms over replicas (issue 21's acceptance): 10,000 Alertmanager alerts sent round-robin
 * to three `okome serve` processes on one PostgreSQL, Slack envelopes dealt over their Socket
 * Mode connections. Every alert is stored once whichever replica took it (and however often
 * Alertmanager sent it again), every message reaches Slack once, the outbox drains; with the
 * leader SIGKILLed mid-storm too.
 */

const TOKEN = 'alertmanager-token-0123456789';
const INCIDENT_CHANNEL = 'C0INCIDENT';
const probe = await scratchPostgresDatabase('the replicas storm tests');
await probe?.drop();

let emu: SlackEmulator | undefined;
let set: ReplicaSet | undefined;
let drop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await set?.stop();
  await emu?.close();
  await drop?.();
  set = emu = drop = undefined;
});

async function threeReplicas(
  edit: (doc: Record<string, unknown>) => void = () => {},
): Promise<{ url: string; set: ReplicaSet; emu: SlackEmulator }> {
  const db = await scratchPostgresDatabase('the replicas storm tests');
  if (db === undefined) throw new Error('PostgreSQL went away');
  drop = db.drop;
  emu = await startSlackEmulator({ spread: 'round-robin' });
  set = await startReplicaSet({
    count: 3,
    databaseUrl: db.url,
    emu,
    alertmanagerToken: TOKEN,
    edit: (doc) => {
      doc.alerts = { vipWatch: { enabled: false } };
      // Slack's 1 post/s per channel would make this a three-minute test; the bench keeps it.
      (doc.slack as Record<string, unknown>).postPacing = { intervalMs: 50 };
      edit(doc);
    },
  });
  await set.serving();
  return { url: db.url, set, emu };
}

describe.skipIf(probe === undefined)('alert storms over three replicas', () => {
  it('10,000 alerts round-robin over three replicas: each stored once, each post once, the outbox drained', async () => {
    const { url, set: replicas, emu: emulator } = await threeReplicas();
    const targets = replicas.replicas.map((r) => r.baseUrl);
    const storm = await alertStorm({
      alerts: 10_000,
      groups: 20,
      perNotification: 100,
      targets: () => targets,
      token: TOKEN,
    });
    await waitFor(() => outboxDrained(url), 90_000, 'the outbox drained', 250);
    const facts = await stormFacts(url, emulator, storm.fingerprints, INCIDENT_CHANNEL);
    console.info(
      `storm: ${storm.fingerprints.length} alerts in ${storm.notifications} notifications, sent in ${storm.seconds.toFixed(1)} s; answers ${JSON.stringify(Object.fromEntries(storm.statuses))}; accepted per replica ${[...storm.acceptedBy.values()].join('/')}; ${JSON.stringify(facts, (k, v) => (k === 'missing' || k === 'duplicatePosts' ? v.length : v))}`,
    );
    expect(facts.missing).toEqual([]);
    expect(facts.alertRows).toBe(10_000);
    expect(facts.alertsStoredTwice).toBe(0);
    expect(facts.timelineAlerts).toBe(10_000);
    expect(facts.timelineTwice).toBe(0);
    expect(facts.outbox).toMatchObject({ pending: 0, failed: 0 });
    expect(facts.slackPosts).toBe(facts.outbox.postsSent);
    expect(facts.roots).toBe(facts.incidents);
    // One diagnosis per incident (asked once, when it opened): never one per replica.
    expect(facts.duplicatePosts).toEqual([]);
    // Every replica took a share.
    expect(storm.acceptedBy.size).toBe(3);
  }, 240_000);

  it('the leader SIGKILLed mid-storm: a new leader within 5 s; every alert stored once, every post once', async () => {
    const {
      url,
      set: replicas,
      emu: emulator,
    } = await threeReplicas((doc) => {
      // The dead replica's claims (outbox rows, follow-ups) lapse after the shortest lease allowed.
      doc.store = { kind: 'postgres', replicas: true, outboxLeaseMs: 11_000 };
    });
    const { replica: leader, token } = await replicas.leader();
    const others = replicas.replicas.filter((r) => r !== leader);
    const targets = replicas.replicas.map((r) => r.baseUrl);
    let killedAt: number | undefined;
    let killed: Promise<void> | undefined;
    const storm = await alertStorm({
      alerts: 6000,
      groups: 20,
      perNotification: 100,
      // Alertmanager keeps sending to every URL it was given; the dead one refuses, it sends again.
      targets: () => targets,
      token: TOKEN,
      onAccepted: (n) => {
        if (n !== 20 || killed !== undefined) return;
        killedAt = performance.now();
        killed = leader.kill();
      },
    });
    await killed;
    const next = await waitFor(
      () => others.find((r) => r.seen('elected leader') !== undefined),
      10_000,
      'a new leader',
      20,
    );
    const failoverMs = (next.seen('elected leader') ?? 0) - (killedAt ?? 0);
    await waitFor(() => outboxDrained(url), 90_000, 'the outbox drained', 250);
    const facts = await stormFacts(url, emulator, storm.fingerprints, INCIDENT_CHANNEL);
    const after = await replicas.leader();
    console.info(
      `leader SIGKILLed mid-storm: a new leader after ${Math.round(failoverMs)} ms; storm sent in ${storm.seconds.toFixed(1)} s, answers ${JSON.stringify(Object.fromEntries(storm.statuses))}; ${JSON.stringify(facts, (k, v) => (k === 'missing' || k === 'duplicatePosts' ? v.length : v))}`,
    );
    expect(failoverMs).toBeLessThan(5000);
    expect(after).toEqual({ replica: next, token: token + 1 });
    expect(others.filter((r) => r.seen('elected leader') !== undefined)).toEqual([next]);
    // Attempts at the dead replica were refused and sent again elsewhere.
    expect(storm.statuses.get(0) ?? 0).toBeGreaterThan(0);
    expect(facts.missing).toEqual([]);
    expect(facts.alertRows).toBe(6000);
    expect(facts.alertsStoredTwice).toBe(0);
    expect(facts.timelineAlerts).toBe(6000);
    expect(facts.timelineTwice).toBe(0);
    expect(facts.outbox).toMatchObject({ pending: 0, failed: 0 });
    expect(facts.slackPosts).toBe(facts.outbox.postsSent);
    expect(facts.roots).toBe(facts.incidents);
    expect(facts.duplicatePosts).toEqual([]);
  }, 240_000);
});
