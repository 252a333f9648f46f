import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import { createOutbox } from '../../src/outbox/outbox.js';
import { createSlackGateway } from '../../src/slack/bolt-runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/**
 * Issue 16 point 6, at the wire: Slack refusing a message for its content gets it once more
 * as plain text (the thread keeps it); Slack refusing the token pauses delivery, keeps every
 * message, turns /healthz 503 with the reason and logs one error until auth.test passes again.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function emulator(): Promise<SlackEmulator> {
  const emu = await startSlackEmulator();
  cleanups.push(() => emu.close());
  return emu;
}

describe('Slack refuses a message or the token', () => {
  it('invalid_blocks at the wire: the message arrives as plain text that says it was simplified', async () => {
    const emu = await emulator();
    const store = openSqliteStore({ path: ':memory:' });
    const { gateway } = createSlackGateway({ botToken: 'xoxb-test', slackApiUrl: emu.apiUrl });
    const { outbox, deliverer } = createOutbox({ store, gateway });
    deliverer.start();
    cleanups.push(async () => {
      await deliverer.stop();
      await store.close();
    });
    // A section above Slack's 3,000-character limit: Slack answers ok:false invalid_blocks.
    const long = 'evidence '.repeat(400);
    const root = await outbox.enqueuePost({
      channel: 'C0INCIDENT',
      payload: { text: 'root', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: long } }] },
    });
    await outbox.enqueuePost({
      channel: 'C0INCIDENT',
      threadRef: root,
      payload: { text: 'next in the thread' },
    });
    expect(await deliverer.flush(10_000)).toBe(true);
    expect(emu.callsTo('chat.postMessage').map((c) => c.response.error ?? 'ok')).toEqual([
      'invalid_blocks',
      'ok',
      'ok',
    ]);
    const [message] = emu.messagesIn('C0INCIDENT');
    expect(message?.text).toBe('root\n_(simplified: Slack refused the formatted message, invalid_blocks)_');
    expect(emu.threadOf('C0INCIDENT', message?.ts ?? '').map((m) => m.text)).toContain('next in the thread');
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, failed: 0, sent: 2 });
  });

  it('token_revoked: delivery pauses with every message kept, /healthz says so, one loud error; resumes once auth.test passes', async () => {
    const emu = await emulator();
    const cfg: LoopbackConfig = await loopbackConfig();
    cleanups.push(() => cfg.cleanup());
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
    });
    const app: RunningApp = await startInProcessBot(cfg.config, emu, { logger, slackAuthProbeMs: 100 });
    cleanups.push(() => app.stop({ graceMs: 500 }));
    const health = async () => {
      const r = await fetch(`http://127.0.0.1:${app.httpPort}/healthz`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    expect((await health()).body.slackAuth).toBe('ok');

    emu.fault({ method: 'chat.postMessage', kind: 'ok_false', error: 'token_revoked' });
    emu.fault({ method: 'auth.test', kind: 'ok_false', error: 'token_revoked' });
    await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'validate' }).ack;
    const paused = await emu.waitFor(
      async () => {
        const h = await health();
        return h.status === 503 ? h : undefined;
      },
      10_000,
      '/healthz to report the refused token',
    );
    expect(paused.body).toMatchObject({
      ok: false,
      slackAuth: { error: 'token_revoked' },
      outboxFailed: 0,
    });
    expect(paused.body.outboxPending).toBeGreaterThan(0);
    // The probe keeps asking; still one error line, not one per message or per probe.
    await emu.waitFor(() => emu.callsTo('auth.test').length >= 5, 10_000, 'a few probes');
    const loud = lines.filter((l) => l.level === 50 && String(l.msg).includes('refuses the bot token'));
    expect(loud).toHaveLength(1);
    expect(emu.messagesIn('C0OPS')).toEqual([]);

    emu.clearFaults();
    await emu.waitFor(
      () => emu.messagesIn('C0OPS').find((m) => m.text.startsWith('OKOME validation')),
      10_000,
      'the kept message, delivered',
    );
    const after = await emu.waitFor(
      async () => {
        const h = await health();
        return h.status === 200 ? h : undefined;
      },
      10_000,
      '/healthz to recover',
    );
    expect(after.body).toMatchObject({ ok: true, slackAuth: 'ok', outboxFailed: 0 });
  }, 60_000);
});
