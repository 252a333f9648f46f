import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';
import { CORPUS, everythingShown, marked, problemsOf, slackEscaped } from '../support/slack-text-audit.js';

/**
 * An injection corpus through every field a user or an alert controls (alert labels and
 * annotations via the webhook, slash-command text, user names), against the bot in-process
 * with the real Bolt: on the emulator's record of every chat.postMessage / chat.update /
 * chat.postEphemeral, response_url post and command ack, each corpus string appears only
 * escaped, and the only `<…>` left are the bot's own mentions and links.
 */

const TOKEN = 'am-token-for-tests';

let emu: SlackEmulator;
let app: RunningApp;
let cfg: LoopbackConfig;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>>;

beforeAll(async () => {
  emu = await startSlackEmulator();
  piHttp = await answeringPiHttp();
  cfg = await loopbackConfig(piHttp.override);
  app = await startInProcessBot(cfg.config, emu, { webhooks: { alertmanagerToken: TOKEN } });
}, 30_000);

afterAll(async () => {
  await app?.stop({ graceMs: 2000 });
  await emu?.close();
  await piHttp?.close();
  cfg?.cleanup();
});

async function drained(): Promise<void> {
  await emu.waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
      return ((await r.json()) as { outboxPending: number }).outboxPending === 0;
    },
    // The pre-fix bot opened an incident per hostile node label: its outbox takes longer.
    90_000,
    'an empty outbox',
  );
}

function alert(labels: Record<string, string>, annotations: Record<string, string>, fingerprint: string) {
  return {
    status: 'firing',
    labels,
    annotations,
    startsAt: '2026-12-02T03:00:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus.invalid/graph',
    fingerprint,
  };
}

async function postAlerts(alerts: unknown[], common: Record<string, string>): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${app.httpPort}/alerts/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      version: '4',
      groupKey: `{}:{alertname="${common.receiver}"}`,
      truncatedAlerts: 0,
      status: 'firing',
      receiver: common.receiver,
      groupLabels: { team: common.team },
      commonLabels: { team: common.team },
      commonAnnotations: { runbook: common.team },
      externalURL: common.team,
      alerts,
    }),
  });
  expect(res.status).toBe(202);
}

describe('mention and link injection', () => {
  it('every corpus string, through every field a user or an alert controls, appears only escaped', async () => {
    for (const [i] of CORPUS.entries()) {
      emu.setUser(`U0NAME${i}`, { name: marked(i), realName: marked(i) });
    }
    // Alerts: the corpus as an unmapped alertname (its own incident, titled by it), as the node
    // and instance of a mapped alert, and in other labels and annotations.
    await postAlerts(
      CORPUS.flatMap((_, i) => [
        alert(
          { alertname: marked(i), severity: marked(i), job: marked(i) },
          { summary: marked(i), description: marked(i) },
          `fp-unmapped-${i}`,
        ),
        alert(
          { alertname: 'NginxDown', node: marked(i), instance: marked(i) },
          { summary: marked(i) },
          `fp-node-${i}`,
        ),
      ]),
      { receiver: marked(0), team: marked(5) },
    );
    const roots = await emu.waitFor(
      () => {
        const found = emu.messagesIn('C0INCIDENT').filter((m) => m.threadTs === undefined);
        return CORPUS.every((_, i) => found.some((m) => m.text.includes(`*Alert Q${i}[`)))
          ? found
          : undefined;
      },
      30_000,
      'a root per unmapped alert',
    );
    // Each alert incident diagnosed in its thread (the diagnosis quotes its alerts).
    for (const root of roots) {
      await emu.waitFor(
        () => emu.threadOf('C0INCIDENT', root.ts).some((m) => m.text.startsWith('OKOME status')),
        30_000,
        `the diagnosis under ${root.text.slice(0, 20)}`,
      );
    }
    // Slash commands: the corpus as the verb, as a check target, as an incident reference.
    for (const [i] of CORPUS.entries()) {
      for (const text of [marked(i), `check ${marked(i)}`, `incident ${marked(i)}`, `resolve ${marked(i)}`]) {
        await emu.slash({ userId: `U0NAME${i}`, channelId: 'C0OPS', text }).ack;
      }
      await emu.slash({ userId: `U0NAME${i}`, channelId: 'C0OPS', text: `timeline ${marked(i)}` }).ack;
    }
    // The timelines (alert texts and labels) and by-hand resolves of alert incidents.
    for (const text of ['timeline', 'timeline alert', 'timeline 1', 'help']) {
      await emu.slash({ userId: 'U0APPROVER1', channelId: 'C0OPS', text }).ack;
    }
    // An Ack on a root that has the button: the root is rendered again from what is stored.
    const root = emu.messagesIn('C0INCIDENT').find((m) => JSON.stringify(m.blocks).includes('okome:ack:'));
    const ack = /"action_id":"(okome:ack:\d+)"/.exec(JSON.stringify(root?.blocks))?.[1];
    if (root === undefined || ack === undefined) throw new Error('no root with an Ack button');
    await emu.click({ userId: 'U0APPROVER2', channelId: 'C0INCIDENT', messageTs: root.ts, actionId: ack })
      .ack;
    await emu.slash({ userId: 'U0APPROVER1', channelId: 'C0OPS', text: 'resolve alert' }).ack;
    // Resolved in the store: its message is queued in the same step, and delivered once drained.
    await emu.waitFor(
      () => {
        const db = new Database(cfg.config.store.path, { readonly: true });
        try {
          return db.prepare("SELECT 1 FROM incidents WHERE status = 'resolved' AND number = 'alert'").get();
        } finally {
          db.close();
        }
      },
      20_000,
      'an alert incident resolved by hand',
    );
    await emu.waitFor(
      () => emu.callsTo('chat.postMessage').some((c) => String(c.params.text).startsWith('# Incident alert')),
      20_000,
      'a timeline posted',
    );
    await drained();

    const shown = everythingShown(emu);
    expect(shown.length).toBeGreaterThan(100);
    const bad = shown.flatMap((s) =>
      problemsOf(s.text).map((p) => `${s.where}: ${p}: ${s.text.slice(0, 160)}`),
    );
    expect(bad).toEqual([]);
    // A node label naming no configured node is shown as "unknown node", never as a name.
    expect(shown.some((s) => s.text.includes('`NginxDown` on unknown node'))).toBe(true);
    // The corpus did reach Slack: each string (the long one at least in part) is shown escaped.
    for (const [i, raw] of CORPUS.entries()) {
      const whole = `q${i}[${slackEscaped(raw).slice(0, 500)}`.toLowerCase();
      expect(
        shown.some((s) => s.text.toLowerCase().includes(whole)),
        `corpus ${i} shown escaped`,
      ).toBe(true);
    }
    // Slack accepted every message: nothing was dropped for breaking its limits.
    const refused = emu.calls.filter((c) => c.method.startsWith('chat.') && c.response.ok !== true);
    expect(refused.map((c) => `${c.method}: ${String(c.response.error)}`)).toEqual([]);
  }, 300_000);
});
