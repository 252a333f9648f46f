import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
  withStoreLatency,
} from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** The bot in-process (createApp) against the wire-level emulator, with the real Bolt. */

let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>> | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 2000 });
  await emu?.close();
  await piHttp?.close();
  cfg?.cleanup();
  app = undefined;
  emu = undefined;
  cfg = undefined;
  piHttp = undefined;
});

const ALERT_TOKEN = 'am-token-for-tests';

async function boot(
  mode: 'socket' | 'http' = 'socket',
  options: { storeLatency?: boolean } = {},
): Promise<{ emu: SlackEmulator; app: RunningApp; cfg: LoopbackConfig }> {
  emu = await startSlackEmulator();
  // pi-b answers HTTP, so the bot is not isolated and the refused rest makes incidents.
  piHttp = await answeringPiHttp();
  cfg = await loopbackConfig(piHttp.override);
  app = await startInProcessBot(cfg.config, emu, {
    mode,
    alertmanagerToken: ALERT_TOKEN,
    ...(options.storeLatency === true ? { wrapStore: withStoreLatency } : {}),
  });
  return { emu, app, cfg };
}

/**
 * Waits until the outbox has nothing pending (its health endpoint says so): everything the bot
 * has enqueued so far has reached Slack. Every post goes through the outbox.
 */
async function drained(emu: SlackEmulator, app: RunningApp, timeoutMs = 20_000): Promise<void> {
  await emu.waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
      const body = (await r.json()) as { outboxPending: number };
      return body.outboxPending === 0;
    },
    timeoutMs,
    'an empty outbox',
  );
}

describe('okome bot over Socket Mode', () => {
  it('acks /okome help at once with an ephemeral answer', async () => {
    const { emu } = await boot();
    const { ack } = emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'help' });
    const { payload, latencyMs } = await ack;
    expect(latencyMs).toBeLessThan(3000);
    expect(payload).toMatchObject({ response_type: 'ephemeral', text: 'okome help' });
  });

  it('answers anything else with a usage message, and refuses other channels', async () => {
    const { emu, app } = await boot();
    const bad = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'reboot everything' }).ack;
    expect(JSON.stringify(bad.payload)).toContain('Unknown command');
    const elsewhere = await emu.slash({ userId: 'U1', channelId: 'C0RANDOM', text: 'status' }).ack;
    expect(JSON.stringify(elsewhere.payload)).toContain('does not answer in this channel');
    // A later command's report delivered, and the outbox empty: the refusal had its chance to post.
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 10_000);
    await drained(emu, app);
    expect(emu.messagesIn('C0RANDOM')).toEqual([]);
    expect(emu.calls.filter((c) => c.params.channel === 'C0RANDOM')).toEqual([]);
  });

  it('/okome incident 5 shows the runbook card', async () => {
    const { emu } = await boot();
    const { payload } = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'incident 5' }).ack;
    expect(JSON.stringify(payload)).toContain('Do NOT touch cache nodes');
  });

  it('status: ack first, a progress message updated, then the report; incident opened with a thread', async () => {
    const { emu } = await boot();
    const { ack } = emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' });
    expect((await ack).payload).toEqual({});
    const final = await emu.waitFor(
      () => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')),
      10_000,
      'the final status report',
    );
    expect(emu.callsTo('chat.postMessage')[0]?.params.text).toMatch(/running \d+ checks/);
    expect(emu.callsTo('chat.update').length).toBeGreaterThan(0);
    // All but pi-b's HTTP is refused on loopback: the orchestrator is judged first (incident 5).
    expect(final.text).toMatch(/incident/);
    const root = await emu.waitFor(
      () => emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Incident 5')),
      10_000,
    );
    const thread = await emu.waitFor(() => {
      const t = emu.threadOf('C0INCIDENT', root.ts);
      return t.some((m) => m.text.startsWith('Evidence')) ? t : undefined;
    }, 10_000);
    expect(thread.length).toBeGreaterThan(0);
    // The summary links to the incident's thread itself, not to the channel.
    const linked = await emu.waitFor(
      () => {
        const blocks = JSON.stringify(emu.messagesIn('C0OPS').find((m) => m.ts === final.ts)?.blocks ?? []);
        return blocks.includes('Thread: <https://') ? blocks : undefined;
      },
      10_000,
      'the summary with the thread permalink',
    );
    expect(linked).toContain(`/archives/C0INCIDENT/p${root.ts.replace('.', '')}|thread>`);
    expect(linked).not.toContain('{{permalink:');
  });

  it('a second status for the same incident reuses its thread', async () => {
    const { emu, app } = await boot();
    const roots = () => emu.messagesIn('C0INCIDENT').filter((m) => m.threadTs === undefined);
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 10_000);
    await drained(emu, app);
    const before = roots().map((m) => m.ts);
    expect(before.length).toBeGreaterThan(0);
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(
      () => emu.messagesIn('C0OPS').filter((m) => m.text.startsWith('OKOME status')).length === 2,
      10_000,
    );
    await drained(emu, app);
    expect(roots().map((m) => m.ts)).toEqual(before);
    for (const ts of before) {
      expect(emu.threadOf('C0INCIDENT', ts).some((m) => m.text.startsWith('Still present'))).toBe(true);
    }
  });

  it('a redelivered envelope produces no second answer', async () => {
    const { emu, app } = await boot();
    const first = emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' });
    await first.ack;
    const again = emu.redeliver(first.envelopeId);
    // Acked: the handler has judged it; a second run would have enqueued its progress post by now.
    await again.ack;
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 10_000);
    await drained(emu, app);
    expect(
      emu.messagesIn('C0OPS').filter((m) => m.text.startsWith('OKOME status') || m.text.includes('running')),
    ).toHaveLength(1);
  });
});

describe('concurrent deliveries for one incident', () => {
  it('alert batches arriving together open one thread with one summary, not one per batch', async () => {
    // With store latency, the batches' store work interleaves as it would on a networked store.
    const { emu, app } = await boot('socket', { storeLatency: true });
    const batch = (i: number) => ({
      version: '4',
      groupKey: `{}:{alertname="DiskAlmostFull",instance="disk-${i}"}`,
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'okome',
      groupLabels: { alertname: 'DiskAlmostFull' },
      commonLabels: { alertname: 'DiskAlmostFull', instance: `disk-${i}` },
      commonAnnotations: { summary: 'disk almost full' },
      externalURL: 'http://alertmanager.test:9093',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'DiskAlmostFull', instance: `disk-${i}` },
          annotations: { summary: 'disk almost full' },
          startsAt: '2026-12-02T03:00:00Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus.test/graph',
          fingerprint: `d15c0000000000${String(i).padStart(2, '0')}`,
        },
      ],
    });
    // Sent at once: each batch is handled while the others are between their store writes.
    const statuses = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await fetch(`http://127.0.0.1:${app.httpPort}/alerts/alertmanager`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ALERT_TOKEN}` },
          body: JSON.stringify(batch(i)),
        });
        await r.text();
        return r.status;
      }),
    );
    expect(statuses).toEqual(Array(6).fill(202));
    const root = await emu.waitFor(
      () => emu.messagesIn('C0INCIDENT').find((m) => m.text.includes('DiskAlmostFull')),
      10_000,
      'the alert incident root',
    );
    await drained(emu, app);
    const roots = emu
      .messagesIn('C0INCIDENT')
      .filter((m) => m.threadTs === undefined && m.text.includes('DiskAlmostFull'));
    expect(roots.map((m) => m.ts)).toEqual([root.ts]);
    const summaries = emu.threadOf('C0INCIDENT', root.ts).filter((m) => /deliver/i.test(m.text));
    expect(summaries).toHaveLength(1);
  });
});

describe('okome bot over HTTP mode', () => {
  it('signed requests work; forged, missing and stale signatures get 401 and nothing runs', async () => {
    const { emu, app } = await boot('http');
    const url = `http://127.0.0.1:${app.httpPort}/slack/events`;
    const input = { userId: 'U1', channelId: 'C0OPS', text: 'status' };
    for (const signature of ['forged', 'missing', 'stale'] as const) {
      const r = await emu.httpSlash(url, 'testsecret123', input, { signature });
      expect(r.status, signature).toBe(401);
    }
    const ok = await emu.httpSlash(url, 'testsecret123', { ...input, text: 'help' }, { signature: 'valid' });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('okome help');
    const status = await emu.httpSlash(url, 'testsecret123', input, { signature: 'valid' });
    expect(status.status).toBe(200);
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 10_000);
    await drained(emu, app);
    // Only the signed status ran: one progress message, the one now showing the report.
    expect(emu.messagesIn('C0OPS').filter((m) => !m.threadTs)).toHaveLength(1);
    expect(
      emu.callsTo('chat.postMessage').filter((c) => c.params.channel === 'C0OPS' && !c.params.thread_ts),
    ).toHaveLength(1);
  });

  it('an HTTP retry of the same command produces no second answer', async () => {
    const { emu, app } = await boot('http');
    const url = `http://127.0.0.1:${app.httpPort}/slack/events`;
    const input = { userId: 'U1', channelId: 'C0OPS', text: 'validate' };
    expect((await emu.httpSlash(url, 'testsecret123', input)).status).toBe(200);
    const health = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
    expect(health.status).toBe(200);
    await emu.waitFor(
      () => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME validation')),
      10_000,
    );
    await drained(emu, app);
    const posts = emu.callsTo('chat.postMessage').length;
    // Slack retries with the same payload (same trigger_id) and X-Slack-Retry-Num.
    const last = emu.calls.length;
    expect(last).toBeGreaterThan(0);
    const retried = await emu.httpRetryLastSlash(url, 'testsecret123', { retryNum: 1 });
    // Answered: the handler has judged the retry; a second run would have enqueued its progress post.
    expect(retried.status).toBe(200);
    await drained(emu, app);
    expect(emu.callsTo('chat.postMessage').length).toBe(posts);
  });
});

describe('incident commands', () => {
  it('/okome timeline posts the incident timeline as markdown; /okome resolve closes it by hand, said in its thread', async () => {
    const { emu } = await boot();
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    await emu.waitFor(() => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME status')), 10_000);
    const root = await emu.waitFor(
      () => emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Incident 5')),
      10_000,
    );
    const t = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'timeline 5' }).ack;
    expect(JSON.stringify(t.payload)).toContain('posted');
    const timeline = await emu.waitFor(
      () => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('# Incident 5')),
      10_000,
    );
    expect(timeline.text).toContain('## Timeline (UTC)');
    expect(timeline.text).toMatch(/\*\*diagnosis\*\* Opened/);
    const r = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'resolve 5' }).ack;
    expect(JSON.stringify(r.payload)).toContain('Resolving incident 5');
    await emu.waitFor(
      () => emu.threadOf('C0INCIDENT', root.ts).some((m) => m.text.includes('Resolved by hand by <@U1>')),
      10_000,
    );
    const again = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'resolve 5' }).ack;
    expect(JSON.stringify(again.payload)).toContain('No open incident');
  });
});
