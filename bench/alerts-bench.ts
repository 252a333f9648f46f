/**
 * 10,000 Alertmanager alerts in 60 s across 20 groups into the built bot (its own process):
 * webhook latency, none lost (the timeline counts them), Slack posting pace, RSS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { loopbackConfig } from '../test/support/bot-harness.js';
import { startSlackEmulator } from '../test/support/slack-emulator/index.js';
import { percentile, startBotProcess } from './bot-process.js';

const TOKEN = 'bench-alertmanager-token-0123456789';

export async function alertsBench(
  options: { alerts?: number; seconds?: number; groups?: number } = {},
): Promise<Record<string, unknown>> {
  const total = options.alerts ?? 10_000;
  const seconds = options.seconds ?? 60;
  const groups = options.groups ?? 20;
  const emu = await startSlackEmulator();
  // A healthy orchestrator so the diagnoses the alerts trigger behave as in production.
  const orch: Server = createServer((_q, s) => s.writeHead(200).end('ok'));
  await new Promise<void>((r) => orch.listen(0, '127.0.0.1', r));
  const orchPort = (orch.address() as AddressInfo).port;
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const httpPort = (free.address() as AddressInfo).port;
  await new Promise((r) => free.close(r));
  const cfg = await loopbackConfig((doc) => {
    doc.orchestrator = { baseUrl: `http://127.0.0.1:${orchPort}` };
    doc.http = { port: httpPort, host: '127.0.0.1' };
    doc.alerts = { vipWatch: { enabled: false } };
  });
  const bot = startBotProcess(cfg.path, {
    SLACK_BOT_TOKEN: 'xoxb-bench',
    SLACK_APP_TOKEN: 'xapp-bench',
    SLACK_API_URL: emu.apiUrl,
    OKOME_ALERTMANAGER_TOKEN: TOKEN,
  });
  const agent = new Agent({ connections: 16 });
  const latencies: number[] = [];
  let rssPeakMb = 0;
  const statuses = new Map<number, number>();
  try {
    await emu.waitForSocket(30_000);
    const url = `http://127.0.0.1:${httpPort}/alerts/alertmanager`;
    const started = performance.now();
    const rss = setInterval(() => {
      rssPeakMb = Math.max(rssPeakMb, bot.rssMb());
    }, 250);
    // Paced: alert i is due at i * (seconds / total); 16 in flight at most.
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const due = (i * seconds * 1000) / total;
        const wait = due - (performance.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const g = i % groups;
        const body = JSON.stringify({
          version: '4',
          groupKey: `{}:{alertname="BenchAlert${g}"}`,
          status: 'firing',
          receiver: 'okome',
          groupLabels: { alertname: `BenchAlert${g}` },
          commonLabels: { alertname: `BenchAlert${g}` },
          commonAnnotations: {},
          externalURL: 'http://alertmanager.bench',
          alerts: [
            {
              status: 'firing',
              labels: { alertname: `BenchAlert${g}`, instance: `node-${i}` },
              annotations: { summary: `bench alert ${i}` },
              startsAt: new Date().toISOString(),
              endsAt: '0001-01-01T00:00:00Z',
              generatorURL: 'http://prometheus.bench',
              fingerprint: `bench${i.toString(16).padStart(12, '0')}`,
            },
          ],
        });
        const t0 = performance.now();
        const r = await request(url, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body,
        });
        await r.body.dump();
        latencies.push(performance.now() - t0);
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const sendSeconds = (performance.now() - started) / 1000;
    clearInterval(rss);
    // Let the outbox drain what the storm produced, then count what arrived.
    const db = () => new Database(cfg.config.store.path, { readonly: true });
    const drainStarted = performance.now();
    for (;;) {
      const d = db();
      const pending = (
        d.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'").get() as { n: number }
      ).n;
      d.close();
      if (pending === 0 || performance.now() - drainStarted > 300_000) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const d = db();
    const timelineAlerts = (
      d.prepare("SELECT COUNT(*) AS n FROM timeline WHERE kind = 'alert'").get() as { n: number }
    ).n;
    const incidents = (d.prepare('SELECT COUNT(*) AS n FROM incidents').get() as { n: number }).n;
    const failed = (
      d.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'failed'").get() as { n: number }
    ).n;
    d.close();
    const posts = emu.callsTo('chat.postMessage').map((c) => c.time);
    let maxPerSecond = 0;
    for (let i = 0; i < posts.length; i += 1) {
      const t = posts[i] ?? 0;
      let n = 0;
      for (let j = i; j < posts.length && (posts[j] ?? 0) < t + 1000; j += 1) n += 1;
      maxPerSecond = Math.max(maxPerSecond, n);
    }
    const spanS = posts.length > 1 ? ((posts.at(-1) ?? 0) - (posts[0] ?? 0)) / 1000 : 0;
    return {
      alerts: total,
      groups,
      sentInSeconds: Math.round(sendSeconds * 10) / 10,
      statuses: Object.fromEntries(statuses),
      webhookLatencyMs: {
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: percentile(latencies, 100),
      },
      timelineAlerts,
      lost: total - timelineAlerts,
      incidents,
      slackPosts: posts.length,
      slackPostsMaxInAnySecond: maxPerSecond,
      slackPostsPerSecondAverage: spanS > 0 ? Math.round((posts.length / spanS) * 100) / 100 : null,
      outboxFailed: failed,
      botRssPeakMb: rssPeakMb,
    };
  } finally {
    await agent.close();
    await bot.stop();
    await emu.close();
    await new Promise((r) => orch.close(r));
    cfg.cleanup();
  }
}
