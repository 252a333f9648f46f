import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunningApp } from '../../src/app.js';
import type { Store } from '../../src/store/store-port.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { type Exposition, parsePrometheusText } from '../support/prom-text.js';
import { missingTool } from '../support/required-tools.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** GET /metrics and /readyz of the in-process bot, against the Slack emulator. */

const METRICS_TOKEN = 'metrics-token-0123456789';
const ALERT_TOKEN = 'alert-token-0123456789ab';

let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  cfg?.cleanup();
  app = emu = cfg = undefined;
});

async function boot(overrides?: (doc: Record<string, unknown>) => void, wrapStore?: (store: Store) => Store) {
  const e = await startSlackEmulator();
  emu = e;
  cfg = await loopbackConfig(overrides);
  const a = await startInProcessBot(cfg.config, e, {
    metricsToken: METRICS_TOKEN,
    webhooks: { alertmanagerToken: ALERT_TOKEN },
    ...(wrapStore === undefined ? {} : { wrapStore }),
  });
  app = a;
  await e.waitForSocket(10_000);
  return { emu: e, app: a };
}

async function scrape(port: number, token: string | undefined = METRICS_TOKEN): Promise<Exposition> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await r.text();
  expect(r.status, text).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const parsed = parsePrometheusText(text);
  // promtool's linter too, where it is installed (CI installs it).
  if (missingTool(['promtool']) === undefined) {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint.stderr).not.toMatch(/error while linting/);
  }
  return parsed;
}

async function outboxEmpty(e: SlackEmulator, port: number): Promise<void> {
  await e.waitFor(
    async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
        outboxPending: number;
      };
      return body.outboxPending === 0;
    },
    20_000,
    'an empty outbox',
  );
}

const alertBody = (status: 'firing' | 'resolved') => ({
  version: '4',
  groupKey: '{}:{alertname="RedisDown"}',
  truncatedAlerts: 0,
  status,
  receiver: 'okome-bot',
  groupLabels: { alertname: 'RedisDown' },
  commonLabels: { alertname: 'RedisDown', incident: '2', node: 'pi-b' },
  commonAnnotations: {},
  externalURL: 'http://alertmanager.test:9093',
  alerts: [
    {
      status,
      labels: { alertname: 'RedisDown', incident: '2', node: 'pi-b', layer: 'cache' },
      annotations: { summary: 'Incident 2 — Redis cache unavailable on pi-b' },
      startsAt: '2026-12-02T03:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.test/graph',
      fingerprint: 'aaaa000000000002',
    },
  ],
});

describe('GET /metrics', () => {
  it('is refused without the token and parses as Prometheus text with it', async () => {
    const { app: a } = await boot();
    const bare = await fetch(`http://127.0.0.1:${a.httpPort}/metrics`);
    expect(bare.status).toBe(401);
    await bare.text();
    const wrong = await fetch(`http://127.0.0.1:${a.httpPort}/metrics`, {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    await wrong.text();
    const m = await scrape(a.httpPort);
    for (const [name, type] of [
      ['okome_outbox_pending', 'gauge'],
      ['okome_outbox_oldest_pending_age_seconds', 'gauge'],
      ['okome_slack_calls_total', 'counter'],
      ['okome_status_duration_seconds', 'histogram'],
      ['okome_check_failures_total', 'counter'],
      ['okome_incidents_open', 'gauge'],
      ['okome_approvals', 'gauge'],
      ['okome_remediation_outcomes', 'gauge'],
      ['okome_http_requests_total', 'counter'],
      ['okome_ssh_connections_open', 'gauge'],
      ['okome_ssh_handshakes_total', 'counter'],
      ['process_resident_memory_bytes', 'gauge'],
    ] as const) {
      expect(m.types.get(name), name).toBe(type);
    }
    expect(m.value('okome_http_requests_total', { route: '/metrics', code: '401' })).toBe(2);
  });

  it('its counters and gauges move with the work: a status, an alert, a 429, a 404', async () => {
    const { emu: e, app: a } = await boot();
    const port = a.httpPort;
    const before = await scrape(port);
    const postsOk = (m: Exposition) => m.sum('okome_slack_calls_total', { op: 'post', result: 'ok' });
    const statusRuns = (m: Exposition) => m.sum('okome_status_duration_seconds_count', { scope: 'status' });

    // One 429 on the first post, then a status and an alert that opens incident 2.
    e.fault({ method: 'chat.postMessage', kind: 'rate_limited', retryAfterSec: 0, times: 1 });
    await e.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await e.waitFor(
      () => e.messagesIn('C0OPS').some((m) => m.text.startsWith('OKOME status')),
      15_000,
      'the status',
    );
    const alert = await fetch(`http://127.0.0.1:${port}/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ALERT_TOKEN}` },
      body: JSON.stringify(alertBody('firing')),
    });
    expect(alert.status).toBe(202);
    await alert.text();
    await (await fetch(`http://127.0.0.1:${port}/nowhere`)).text();
    await e.waitFor(
      () => e.messagesIn('C0INCIDENT').some((m) => m.text.includes('RedisDown')),
      15_000,
      'the incident',
    );
    await outboxEmpty(e, port);

    const after = await scrape(port);
    const posts = e.callsTo('chat.postMessage');
    // Every post the outbox made is counted once, by what Slack answered.
    expect(postsOk(after) - postsOk(before)).toBe(
      posts.filter((c) => c.fault === undefined && c.response.ok === true).length,
    );
    expect(after.sum('okome_slack_calls_total', { op: 'post', result: 'rate_limited' })).toBe(
      posts.filter((c) => c.fault?.kind === 'rate_limited').length,
    );
    expect(after.sum('okome_slack_calls_total', { result: 'rate_limited' })).toBe(1);
    expect(statusRuns(after) - statusRuns(before)).toBeGreaterThanOrEqual(1);
    // The loopback lab answers nothing: checks fail or cannot judge, and are counted by check.
    expect(after.sum('okome_check_failures_total')).toBeGreaterThan(before.sum('okome_check_failures_total'));
    expect(after.value('okome_incidents_open', { number: '2' })).toBe(1);
    expect(after.value('okome_incidents_open', { number: '7' })).toBe(0);
    expect(after.value('okome_http_requests_total', { route: '/alerts/alertmanager', code: '202' })).toBe(1);
    expect(after.value('okome_http_requests_total', { route: 'other', code: '404' })).toBe(1);
    expect(after.value('okome_outbox_pending')).toBe(0);
    expect(after.value('okome_outbox_oldest_pending_age_seconds')).toBe(0);
    // The incident resolved: the gauge reads the store at scrape time.
    const resolved = await fetch(`http://127.0.0.1:${port}/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ALERT_TOKEN}` },
      body: JSON.stringify({
        ...alertBody('resolved'),
        alerts: [{ ...alertBody('resolved').alerts[0], endsAt: '2026-12-02T03:05:00Z' }],
      }),
    });
    await resolved.text();
    await e.waitFor(
      async () => (await scrape(port)).value('okome_incidents_open', { number: '2' }) === 0,
      15_000,
      'incident 2 resolved',
    );
  });

  it('on its own bind (metrics.listen) it needs no token, and the main server does not serve it', async () => {
    const { app: a } = await boot((doc) => {
      doc.metrics = { listen: { host: '127.0.0.1', port: 0 } };
    });
    expect(a.metricsPort).toBeGreaterThan(0);
    const moved = await fetch(`http://127.0.0.1:${a.httpPort}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(moved.status).toBe(404);
    await moved.text();
    // A token, when set, is still checked on the own bind.
    const bare = await fetch(`http://127.0.0.1:${a.metricsPort}/metrics`);
    expect(bare.status).toBe(401);
    await bare.text();
    const m = await scrape(a.metricsPort ?? 0);
    expect(m.types.get('okome_outbox_pending')).toBe('gauge');
  });
});

describe('GET /readyz', () => {
  it('is ready while Slack is connected and the store writable; not while either is not', async () => {
    // A store that stops taking writes (disk full, read-only remount) while reads still work.
    let writable = true;
    const failingWrites = (store: Store): Store =>
      new Proxy(store, {
        get(target, key, receiver) {
          const value: unknown = Reflect.get(target, key, receiver);
          if (key !== 'markSeen' || typeof value !== 'function') return value;
          return (...args: unknown[]) =>
            writable
              ? value.apply(target, args)
              : Promise.reject(new Error('SQLITE_FULL: database or disk is full'));
        },
      });
    const { emu: e, app: a } = await boot(undefined, failingWrites);
    const ready = async () => {
      const r = await fetch(`http://127.0.0.1:${a.httpPort}/readyz`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    expect(await ready()).toEqual({ status: 200, body: { ready: true, slack: true, store: true } });
    writable = false;
    expect(await ready()).toEqual({ status: 503, body: { ready: false, slack: true, store: false } });
    writable = true;
    expect(await ready()).toEqual({ status: 200, body: { ready: true, slack: true, store: true } });
    // Slack refuses new sockets and the current one drops: not ready, still alive.
    e.fault({ method: 'apps.connections.open', kind: 'ok_false', error: 'internal_error', times: 1 });
    e.dropSocket();
    await e.waitFor(async () => (await ready()).status === 503, 10_000, '/readyz 503');
    expect(await ready()).toEqual({ status: 503, body: { ready: false, slack: false, store: true } });
    const live = await fetch(`http://127.0.0.1:${a.httpPort}/healthz`);
    expect(live.status).toBe(200);
    await live.text();
    e.clearFaults();
    await e.waitFor(async () => (await ready()).status === 200, 30_000, '/readyz 200 again');
  });
});

const CONTRIB = join(import.meta.dirname, '../../contrib');
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'offset', 'bool']);

/** The metric names a PromQL expression reads: labels, ranges, strings and functions removed. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  return [...bare.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1] ?? '')
    .filter((name) => !PROMQL_WORDS.has(name));
}

describe('the shipped dashboard and rules', () => {
  it('name only metrics the bot serves or an exporter we ship or expect provides', async () => {
    const { app: a } = await boot();
    const served = await scrape(a.httpPort);
    const fromBot = new Set([...served.types.keys(), ...served.samples.map((s) => s.name)]);
    const expected = readFileSync(
      join(import.meta.dirname, '../fixtures/monitoring/exporter-metrics.txt'),
      'utf8',
    )
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'));
    const textfile = [
      ...readFileSync(join(CONTRIB, 'textfile/okome-node-metrics'), 'utf8').matchAll(/# TYPE (\S+) /g),
    ].map((m) => m[1] ?? '');
    const known = new Set([...fromBot, ...expected, ...textfile]);

    const dashboard = JSON.parse(readFileSync(join(CONTRIB, 'grafana/okome-bot.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const named = new Map<string, string>();
    for (const panel of dashboard.panels)
      for (const target of panel.targets ?? [])
        for (const name of metricNames(target.expr)) named.set(name, `dashboard panel "${panel.title}"`);
    const rules = parse(readFileSync(join(CONTRIB, 'prometheus/okome.rules.yml'), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    for (const rule of rules.groups.flatMap((g) => g.rules))
      for (const name of metricNames(rule.expr)) named.set(name, `rule ${rule.alert}`);
    const unknown = [...named].filter(([name]) => !known.has(name));
    expect(unknown).toEqual([]);
    // The bot's own families all appear on the dashboard.
    const ours = [...served.types.keys()].filter((name) => name.startsWith('okome_'));
    const onDashboard = new Set([...named.keys()].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(ours.filter((name) => !onDashboard.has(name))).toEqual([]);
    // Every expected exporter metric is used somewhere (the list does not rot).
    expect(expected.filter((name) => !named.has(name))).toEqual([]);
  });
});
