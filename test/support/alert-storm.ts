import pg from 'pg';
import { Agent, request } from 'undici';
import type { SlackEmulator } from './slack-emulator/index.js';

/**
 * An alert storm as Alertmanager sends it to replicas behind a round-robin balancer: alerts
 * grouped (one groupKey per alertname), each notification a batch of the group's new alerts
 * plus the previous batch still firing (Alertmanager sends a group's firing alerts again), a
 * few groups in flight at once, and a notification answered anything but 2xx (or not at all:
 * a replica killed, PostgreSQL down) sent again, to the next replica, until one accepts it.
 */

export interface StormOptions {
  readonly alerts: number;
  readonly groups: number;
  /** New alerts per notification. */
  readonly perNotification: number;
  /** The replicas' base URLs, read at each attempt (a test may drop a dead one; a balancer would). */
  readonly targets: () => readonly string[];
  readonly token: string;
  /** Notifications in flight at once (Alertmanager sends groups in parallel); default 6. */
  readonly concurrency?: number;
  /** Between a refused attempt and the next; default 200 ms. */
  readonly retryMs?: number;
  /** Notifications are not sent before this many ms apart overall (0: as fast as answered). */
  readonly spacingMs?: number;
  /** After each notification accepted, with how many are accepted so far. */
  readonly onAccepted?: (accepted: number) => void;
}

export interface StormResult {
  readonly fingerprints: readonly string[];
  readonly notifications: number;
  /** Attempts by outcome: HTTP status, or 0 for no answer. */
  readonly statuses: ReadonlyMap<number, number>;
  /** Attempts answered 2xx per target. */
  readonly acceptedBy: ReadonlyMap<string, number>;
  /** Milliseconds from each attempt's request to its answer (no answer: until the failure). */
  readonly latenciesMs: readonly number[];
  readonly seconds: number;
}

const fingerprintOf = (group: number, i: number) =>
  `${group.toString(16).padStart(4, '0')}${i.toString(16).padStart(12, '0')}`;

interface Notification {
  readonly body: string;
}

function notifications(options: StormOptions): { list: Notification[]; fingerprints: string[] } {
  const perGroup = Math.ceil(options.alerts / options.groups);
  const batches = Math.ceil(perGroup / options.perNotification);
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const fingerprints: string[] = [];
  const alertOf = (group: number, i: number) => ({
    status: 'firing',
    labels: { alertname: `Storm${group}`, instance: `host-${i}` },
    annotations: { summary: `storm alert ${group}/${i}` },
    startsAt,
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus.test/graph',
    fingerprint: fingerprintOf(group, i),
  });
  const list: Notification[] = [];
  // Interleaved: batch b of every group before batch b + 1 of any, as parallel groups arrive.
  for (let b = 0; b < batches; b++) {
    for (let g = 0; g < options.groups; g++) {
      const from = b * options.perNotification;
      const to = Math.min(perGroup, from + options.perNotification);
      const fresh: number[] = [];
      for (let i = from; i < to && g * perGroup + i < options.alerts; i++) fresh.push(i);
      if (fresh.length === 0) continue;
      for (const i of fresh) fingerprints.push(fingerprintOf(g, i));
      const previous: number[] = [];
      for (let i = Math.max(0, from - options.perNotification); i < from; i++) previous.push(i);
      const labels = { alertname: `Storm${g}` };
      list.push({
        body: JSON.stringify({
          version: '4',
          groupKey: `{}:{alertname="Storm${g}"}`,
          truncatedAlerts: 0,
          status: 'firing',
          receiver: 'okome',
          groupLabels: labels,
          commonLabels: labels,
          commonAnnotations: {},
          externalURL: 'http://alertmanager.test:9093',
          alerts: [...previous, ...fresh].map((i) => alertOf(g, i)),
        }),
      });
    }
  }
  return { list, fingerprints };
}

export async function alertStorm(options: StormOptions): Promise<StormResult> {
  const { list, fingerprints } = notifications(options);
  const agent = new Agent({ connections: 8, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const statuses = new Map<number, number>();
  const acceptedBy = new Map<string, number>();
  const latenciesMs: number[] = [];
  const retryMs = options.retryMs ?? 200;
  const spacingMs = options.spacingMs ?? 0;
  let turn = 0;
  let next = 0;
  let accepted = 0;
  const started = performance.now();
  const attempt = async (target: string, body: string): Promise<number> => {
    try {
      const r = await request(`${target}/alerts/alertmanager`, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      await r.body.dump();
      return r.statusCode;
    } catch {
      return 0;
    }
  };
  const worker = async () => {
    for (;;) {
      const n = next++;
      const notification = list[n];
      if (notification === undefined) return;
      const due = n * spacingMs - (performance.now() - started);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      for (let tries = 0; ; tries++) {
        const targets = options.targets();
        const target = targets[turn++ % targets.length];
        if (target === undefined) throw new Error('no replica to send to');
        const t0 = performance.now();
        const status = await attempt(target, notification.body);
        latenciesMs.push(performance.now() - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 200 && status < 300) {
          acceptedBy.set(target, (acceptedBy.get(target) ?? 0) + 1);
          options.onAccepted?.(++accepted);
          break;
        }
        if (tries > 600) throw new Error(`notification ${n} never accepted (last answer ${status})`);
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 6 }, worker));
  } finally {
    await agent.close();
  }
  return {
    fingerprints,
    notifications: list.length,
    statuses,
    acceptedBy,
    latenciesMs,
    seconds: (performance.now() - started) / 1000,
  };
}

/** What the store and Slack hold after a storm: the figures a test asserts on. */
export interface StormFacts {
  /** Stored alert rows, and fingerprints with more than one row. */
  readonly alertRows: number;
  readonly alertsStoredTwice: number;
  /** Fingerprints sent but not stored. */
  readonly missing: readonly string[];
  /** The timeline's alert entries, and fingerprints with more than one. */
  readonly timelineAlerts: number;
  readonly timelineTwice: number;
  readonly incidents: number;
  readonly outbox: { readonly pending: number; readonly failed: number; readonly postsSent: number };
  /** chat.postMessage calls Slack accepted. */
  readonly slackPosts: number;
  /** Thread replies with the same channel, thread and content as an earlier one (thread: text). */
  readonly duplicatePosts: readonly string[];
  /** Top-level posts in the incident channel (one per incident: its thread's root). */
  readonly roots: number;
}

export async function stormFacts(
  databaseUrl: string,
  emu: SlackEmulator,
  fingerprints: readonly string[],
  incidentChannel: string,
): Promise<StormFacts> {
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => {});
  await db.connect();
  try {
    const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]?.n ?? 0);
    const stored = await db.query<{ fingerprint: string; n: string }>(
      'SELECT fingerprint, count(*) AS n FROM incident_alerts GROUP BY fingerprint',
    );
    const have = new Set(stored.rows.map((r) => r.fingerprint));
    const timeline = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM timeline WHERE kind = 'alert' GROUP BY data::jsonb->>'fingerprint'`,
    );
    const posts = emu.callsTo('chat.postMessage').filter((c) => c.response.ok === true);
    const seen = new Set<string>();
    const duplicatePosts: string[] = [];
    // Thread replies only: top-level posts are the roots, counted against the incidents.
    for (const c of posts.filter((p) => p.params.thread_ts !== undefined)) {
      const key = JSON.stringify([c.params.channel, c.params.thread_ts, c.params.text, c.params.blocks]);
      if (seen.has(key))
        duplicatePosts.push(`${String(c.params.thread_ts)}: ${String(c.params.text).slice(0, 80)}`);
      seen.add(key);
    }
    return {
      alertRows: stored.rows.reduce((sum, r) => sum + Number(r.n), 0),
      alertsStoredTwice: stored.rows.filter((r) => Number(r.n) > 1).length,
      missing: fingerprints.filter((f) => !have.has(f)),
      timelineAlerts: timeline.rows.reduce((sum, r) => sum + Number(r.n), 0),
      timelineTwice: timeline.rows.filter((r) => Number(r.n) > 1).length,
      incidents: await count('SELECT count(*) AS n FROM incidents'),
      outbox: {
        pending: await count("SELECT count(*) AS n FROM outbox WHERE state = 'pending'"),
        failed: await count("SELECT count(*) AS n FROM outbox WHERE state = 'failed'"),
        postsSent: await count("SELECT count(*) AS n FROM outbox WHERE op = 'post' AND state = 'sent'"),
      },
      slackPosts: posts.length,
      duplicatePosts,
      roots: posts.filter((c) => c.params.channel === incidentChannel && c.params.thread_ts === undefined)
        .length,
    };
  } finally {
    await db.end();
  }
}

/** The outbox holds nothing pending (every post and update went out or failed for good). */
export async function outboxDrained(databaseUrl: string): Promise<boolean> {
  const db = new pg.Client({ connectionString: databaseUrl });
  db.on('error', () => {});
  try {
    await db.connect();
    const r = await db.query<{ n: string }>("SELECT count(*) AS n FROM outbox WHERE state = 'pending'");
    return Number(r.rows[0]?.n) === 0;
  } catch {
    return false;
  } finally {
    await db.end().catch(() => {});
  }
}
