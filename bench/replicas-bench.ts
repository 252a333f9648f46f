/**
 * 1 vs 3 replicas on one PostgreSQL, side by side in one run (issue 21): the built bot, each
 * replica its own process with its own HTTP port, one Slack app (the emulator deals Socket Mode
 * envelopes over the replicas' connections). Per setting: ack latency of `/okome help` and
 * `/okome status`, the time until a status's report is in Slack, and an alert storm of 10,000
 * Alertmanager alerts in 60 s (grouped, round-robin over the replicas): webhook latency, lost
 * and doubled alerts, posts per channel (the most in any 30 s window, averaged per second, and in
 * any second) at Slack's pacing, RSS.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { alertStorm, outboxDrained, stormFacts } from '../test/support/alert-storm.js';
import { replicaConfigs } from '../test/support/replicas.js';
import { type SlackEmulator, startSlackEmulator } from '../test/support/slack-emulator/index.js';
import { type BotProcess, percentile, startBotProcess } from './bot-process.js';

const TOKEN = 'bench-alertmanager-token-0123456789';
const ADMIN_URL = process.env.OKOME_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** No bench step waits longer than this for the bots (a bounded case, whatever goes wrong). */
const STEP_TIMEOUT_MS = 180_000;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`bench: ${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ready(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
    await r.text();
    return r.status === 200;
  } catch {
    return false;
  }
}

/** The most posts of one channel in any `windowMs`, over all channels. */
function mostInWindow(posts: readonly { channel: string; time: number }[], windowMs: number): number {
  const byChannel = new Map<string, number[]>();
  for (const p of posts) byChannel.set(p.channel, [...(byChannel.get(p.channel) ?? []), p.time]);
  let most = 0;
  for (const times of byChannel.values()) {
    times.sort((a, b) => a - b);
    let j = 0;
    for (let i = 0; i < times.length; i++) {
      while ((times[j] ?? 0) <= (times[i] ?? 0) - windowMs) j++;
      most = Math.max(most, i - j + 1);
    }
  }
  return most;
}

interface Setting {
  readonly emu: SlackEmulator;
  readonly bots: readonly BotProcess[];
  readonly ports: readonly number[];
  readonly url: string;
}

async function acks(s: Setting): Promise<Record<string, unknown>> {
  const help: number[] = [];
  for (let i = 0; i < 300; i++)
    help.push((await s.emu.slash({ userId: 'U0BENCH', channelId: 'C0OPS', text: 'help' }).ack).latencyMs);
  // Statuses 1.5 s apart: Slack's pacing (3 at once, then 1/s) is not what is measured here.
  const statusAck: number[] = [];
  const statusReport: number[] = [];
  const reports = () =>
    s.emu
      .callsTo('chat.postMessage')
      .filter(
        (c) => c.response.ok === true && c.params.channel === 'C0OPS' && c.params.thread_ts === undefined,
      ).length;
  for (let i = 0; i < 20; i++) {
    const before = reports();
    const t0 = performance.now();
    statusAck.push(
      (await s.emu.slash({ userId: 'U0BENCH', channelId: 'C0OPS', text: 'status' }).ack).latencyMs,
    );
    await until('a status report', () => reports() > before, 30_000);
    statusReport.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, Math.max(0, 1500 - (performance.now() - t0))));
  }
  const stats = (xs: number[]) => ({ runs: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) });
  return { helpAckMs: stats(help), statusAckMs: stats(statusAck), statusReportMs: stats(statusReport) };
}

async function storm(s: Setting, alerts: number, seconds: number): Promise<Record<string, unknown>> {
  const perNotification = 50;
  const notifications = Math.ceil(alerts / perNotification);
  let rssPeakMb = 0;
  const rss = setInterval(() => {
    rssPeakMb = Math.max(rssPeakMb, ...s.bots.map((b) => b.rssMb()));
  }, 250);
  const postsBefore = s.emu.callsTo('chat.postMessage').length;
  let result: Awaited<ReturnType<typeof alertStorm>>;
  try {
    result = await alertStorm({
      alerts,
      groups: 20,
      perNotification,
      targets: () => s.ports.map((p) => `http://127.0.0.1:${p}`),
      token: TOKEN,
      spacingMs: (seconds * 1000) / notifications,
      concurrency: 8,
    });
  } finally {
    clearInterval(rss);
  }
  const drainStarted = performance.now();
  await until('the outbox drained', () => outboxDrained(s.url));
  const drainSeconds = (performance.now() - drainStarted) / 1000;
  const facts = await stormFacts(s.url, s.emu, result.fingerprints, 'C0INCIDENT');
  const posts = s.emu
    .callsTo('chat.postMessage')
    .slice(postsBefore)
    .filter((c) => c.response.ok === true)
    .map((c) => ({ channel: String(c.params.channel), time: c.time }));
  return {
    alerts,
    notifications,
    sentInSeconds: Math.round(result.seconds * 10) / 10,
    statuses: Object.fromEntries(result.statuses),
    webhookLatencyMs: {
      p50: percentile([...result.latenciesMs], 50),
      p99: percentile([...result.latenciesMs], 99),
      max: percentile([...result.latenciesMs], 100),
    },
    lost: facts.missing.length,
    storedTwice: facts.alertsStoredTwice + facts.timelineTwice,
    incidents: facts.incidents,
    slackPosts: posts.length,
    // Slack got a post more often than the outbox sent it (a delivery doubled).
    duplicateDeliveries: facts.slackPosts - facts.outbox.postsSent,
    // The same content posted again in one thread (e.g. a second diagnosis with the same result).
    repeatedInThread: facts.duplicatePosts.length,
    repeatedSamples: facts.duplicatePosts.slice(0, 3),
    postsPerChannelMaxIn30s: mostInWindow(posts, 30_000),
    postsPerChannelMaxAverageOver30sPerSecond: Math.round((mostInWindow(posts, 30_000) / 30) * 100) / 100,
    postsPerChannelMaxInAnySecond: mostInWindow(posts, 1000),
    drainedSecondsAfterLastAlert: Math.round(drainSeconds * 10) / 10,
    outboxFailed: facts.outbox.failed,
    rssPeakMbPerReplica: rssPeakMb,
  };
}

async function setting(
  count: number,
  options: { alerts: number; seconds: number },
): Promise<Record<string, unknown>> {
  const database = `okome_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  await admin(`CREATE DATABASE ${database}`);
  const emu = await startSlackEmulator({ spread: 'round-robin' });
  // A healthy orchestrator so the diagnoses the alerts trigger behave as in production.
  const orch: Server = createServer((_q, r) => r.writeHead(200).end('ok'));
  await new Promise<void>((r) => orch.listen(0, '127.0.0.1', r));
  const orchPort = (orch.address() as AddressInfo).port;
  const { config, replicas } = await replicaConfigs(count, (doc) => {
    doc.orchestrator = { baseUrl: `http://127.0.0.1:${orchPort}` };
    doc.alerts = { vipWatch: { enabled: false } };
  });
  const bots: BotProcess[] = [];
  try {
    for (const r of replicas)
      bots.push(
        startBotProcess(r.path, {
          SLACK_BOT_TOKEN: 'xoxb-bench',
          SLACK_APP_TOKEN: 'xapp-bench',
          SLACK_API_URL: emu.apiUrl,
          OKOME_DATABASE_URL: url.toString(),
          OKOME_ALERTMANAGER_TOKEN: TOKEN,
        }),
      );
    const t0 = performance.now();
    const ports = replicas.map((r) => r.port);
    await until(`${count} replicas ready`, async () => (await Promise.all(ports.map(ready))).every(Boolean));
    const readyMs = Math.round(performance.now() - t0);
    const s: Setting = { emu, bots, ports, url: url.toString() };
    const slack = await acks(s);
    const alerts = await storm(s, options.alerts, options.seconds);
    return { replicas: count, readyMs, ...slack, alerts };
  } catch (error) {
    const log = bots.map((b) => b.log.join('').slice(-2000)).join('\n---\n');
    throw new Error(`${(error as Error).message}\n${log}`);
  } finally {
    for (const b of bots) await b.stop();
    await emu.close();
    await new Promise((r) => orch.close(r));
    config.cleanup();
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

export async function replicasBench(
  options: { alerts?: number; seconds?: number } = {},
): Promise<Record<string, unknown>> {
  const o = { alerts: options.alerts ?? 10_000, seconds: options.seconds ?? 60 };
  return { one: await setting(1, o), three: await setting(3, o) };
}
