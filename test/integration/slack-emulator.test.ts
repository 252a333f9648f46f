// The Slack emulator against the real @slack/bolt: Socket Mode over its WebSocket, the Web API,
// response_url, faults, Block Kit limits, and signed HTTP-mode requests to Bolt's HTTPReceiver.

import {
  App,
  type AppOptions,
  type Logger,
  LogLevel,
  type SlashCommand,
  SocketModeReceiver,
  type types,
  webApi,
} from '@slack/bolt';
import { describe, expect, test } from 'vitest';
import {
  AckTimeoutError,
  EnvelopeLostError,
  type SlackEmulator,
  type SlackEmulatorOptions,
  startSlackEmulator,
} from '../support/slack-emulator/index.js';
import { formatTimestamp, nextTimestamp } from '../support/slack-emulator/message-store.js';
import { waitFor } from '../support/slack-emulator/wait-for.js';
import { encodeServerFrame, readClientFrame } from '../support/slack-emulator/web-socket-server.js';

const SIGNING_SECRET = 'emulator-signing-secret';
type ClientOptions = NonNullable<AppOptions['clientOptions']>;

/** Bolt's log lines, kept instead of printed; tests may assert on them. */
function memoryLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  let level = LogLevel.WARN;
  const keep =
    (name: string) =>
    (...message: unknown[]) => {
      lines.push(`${name} ${message.map(String).join(' ')}`);
    };
  return {
    lines,
    debug: () => undefined,
    info: () => undefined,
    warn: keep('warn'),
    error: keep('error'),
    setLevel: (next) => {
      level = next;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** Owns what a test starts, and stops it afterwards: apps first, then emulators. */
class Harness {
  readonly logger = memoryLogger();
  readonly #emulators: SlackEmulator[] = [];
  readonly #stops: Array<() => Promise<unknown>> = [];

  async emulator(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
    const emulator = await startSlackEmulator(options);
    this.#emulators.push(emulator);
    return emulator;
  }

  /** A fresh clientOptions object per App: Bolt mutates the one it is given. */
  clientOptions(emu: SlackEmulator, overrides: ClientOptions = {}): ClientOptions {
    return { slackApiUrl: emu.apiUrl, retryConfig: { retries: 0 }, timeout: 5000, ...overrides };
  }

  async socketApp(
    emu: SlackEmulator,
    register: (app: App) => void = () => undefined,
    overrides: ClientOptions = {},
  ): Promise<App> {
    const app = new App({
      token: 'xoxb-test',
      appToken: 'xapp-test',
      socketMode: true,
      logger: this.logger,
      deferInitialization: true,
      clientOptions: this.clientOptions(emu, overrides),
    });
    register(app);
    return this.start(app);
  }

  /** Initialises and starts `app`, and stops it when the test ends. */
  async start(app: App): Promise<App> {
    await app.init();
    await app.start();
    this.#stops.push(() => app.stop());
    return app;
  }

  async httpApp(emu: SlackEmulator, register: (app: App) => void): Promise<{ app: App; url: string }> {
    const app = new App({
      token: 'xoxb-test',
      signingSecret: SIGNING_SECRET,
      logger: this.logger,
      deferInitialization: true,
      clientOptions: this.clientOptions(emu),
    });
    register(app);
    await app.init();
    const server = await app.start({ port: 0, host: '127.0.0.1' });
    this.#stops.push(() => app.stop());
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('HTTPReceiver is not on TCP');
    return { app, url: `http://127.0.0.1:${address.port}/slack/events` };
  }

  async dispose(): Promise<void> {
    for (const stop of this.#stops.reverse()) await stop();
    for (const emulator of this.#emulators) await emulator.close();
  }
}

const it = test.extend<{ harness: Harness }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from this pattern
  harness: async ({}, use) => {
    const harness = new Harness();
    try {
      await use(harness);
    } finally {
      await harness.dispose();
    }
  },
});

function section(text: string): types.SectionBlock {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

function ackButtonMessage(): { text: string; blocks: types.KnownBlock[] } {
  return {
    text: 'Incident INC-1: okome-cache-2 is down',
    blocks: [
      section('*INC-1* okome-cache-2 is down'),
      {
        type: 'actions',
        block_id: 'incident-actions',
        elements: [
          {
            type: 'button',
            action_id: 'okome_ack',
            text: { type: 'plain_text', text: 'Acknowledge' },
            value: 'INC-1',
            style: 'primary',
          },
        ],
      },
    ],
  };
}

async function platformError(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (
    !(error instanceof Error) ||
    !('data' in error) ||
    typeof error.data !== 'object' ||
    error.data === null
  ) {
    throw new Error(`expected a WebAPIPlatformError, got ${String(error)}`);
  }
  return { code: 'code' in error ? error.code : undefined, ...error.data };
}

describe('Socket Mode with the real Bolt', () => {
  it('connects with the app token, says hello, and records every call with its token', async ({
    harness,
  }) => {
    const emu = await harness.emulator();
    await harness.socketApp(emu);

    expect(emu.callsTo('auth.test')).toEqual([
      expect.objectContaining({
        token: 'xoxb-test',
        status: 200,
        response: expect.objectContaining({ ok: true }),
      }),
    ]);
    const [open] = emu.callsTo('apps.connections.open');
    expect(open?.token).toBe('xapp-test');
    expect(open?.response.url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${emu.port}/link/\\?ticket=`));
    expect(emu.connectionsOpened).toBe(1);
    expect(emu.socketConnections).toBe(1);
  });

  it('delivers /okome status: the ack beats 3 s and the post lands in the channel', async ({ harness }) => {
    const emu = await harness.emulator();
    const commands: SlashCommand[] = [];
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, command, client }) => {
        await ack();
        commands.push(command);
        await client.chat.postMessage({
          channel: command.channel_id,
          text: `status for ${command.user_name}`,
          blocks: [section(`*status* asked by <@${command.user_id}>: ${command.text}`)],
        });
      });
    });

    const delivery = emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' });
    const ack = await delivery.ack;
    expect(ack.latencyMs).toBeLessThan(3000);
    expect(ack.payload).toEqual({});

    const post = await emu.waitFor(
      () => emu.callsTo('chat.postMessage')[0],
      2000,
      'the chat.postMessage call',
    );
    expect(post.token).toBe('xoxb-test');
    expect(post.params.blocks).toEqual([section('*status* asked by <@U1>: status')]);
    const [message] = emu.messagesIn('C1');
    expect(message?.text).toBe('status for u1');
    expect(message?.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(post.response).toMatchObject({ ok: true, channel: 'C1', ts: message?.ts });

    expect(commands[0]).toMatchObject({
      token: 'verification-token',
      team_id: 'T1',
      team_domain: 't',
      channel_id: 'C1',
      channel_name: 'c1',
      user_id: 'U1',
      user_name: 'u1',
      command: '/okome',
      text: 'status',
      api_app_id: 'A1',
      is_enterprise_install: 'false',
    });
    expect(commands[0]?.response_url).toMatch(new RegExp(`^${emu.baseUrl}/response/`));
    expect(commands[0]?.trigger_id).toMatch(/^\d+\.\d+\.[0-9a-f]+$/);
    expect(emu.envelopes[0]).toMatchObject({
      type: 'slash_commands',
      acceptsResponsePayload: true,
      delivered: true,
    });
  });

  it('returns ack({ text }) as the envelope payload and records respond() posts', async ({ harness }) => {
    const emu = await harness.emulator();
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, respond }) => {
        await ack({ text: 'checking…' });
        await respond({ response_type: 'in_channel', text: 'all 3 cache nodes up' });
        await respond({ text: 'only you can see this' });
      });
    });

    const { ack } = emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' });
    expect((await ack).payload).toEqual({ text: 'checking…' });
    await emu.waitFor(() => emu.responses.length === 2, 2000, 'two response_url posts');

    expect(emu.responses.map((response) => [response.status, response.body.text])).toEqual([
      [200, 'all 3 cache nodes up'],
      [200, 'only you can see this'],
    ]);
    expect(emu.messagesIn('C1').map((message) => message.text)).toEqual(['all 3 cache nodes up']);
    expect(emu.ephemeralsIn('C1')).toEqual([
      expect.objectContaining({ user: 'U1', text: 'only you can see this', via: 'response_url' }),
    ]);
  });

  it('fails respond() on a response_url fault, and answers 404 to an unknown response_url', async ({
    harness,
  }) => {
    const emu = await harness.emulator();
    const outcomes: unknown[] = [];
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, respond }) => {
        await ack();
        outcomes.push(
          await respond({ text: 'first' }).then(
            () => 'ok',
            (error: unknown) => error,
          ),
        );
        outcomes.push(
          await respond({ text: 'second' }).then(
            () => 'ok',
            (error: unknown) => error,
          ),
        );
      });
    });
    emu.fault({ method: 'response_url', kind: 'http_500', times: 1 });

    await emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' }).ack;
    await emu.waitFor(() => outcomes.length === 2);
    expect(outcomes).toEqual([expect.objectContaining({ statusCode: 500 }), 'ok']);
    expect(emu.responses.map((response) => [response.status, response.fault?.kind])).toEqual([
      [500, 'http_500'],
      [200, undefined],
    ]);

    const unknown = await fetch(`${emu.baseUrl}/response/R404`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'late' }),
    });
    expect(unknown.status).toBe(404);
  });

  it('redelivers with retry_attempt, which Bolt exposes as context.retryNum', async ({ harness }) => {
    const emu = await harness.emulator();
    const seen: Array<{ retryNum: number | undefined; retryReason: string | undefined }> = [];
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, context }) => {
        await ack();
        seen.push({ retryNum: context.retryNum, retryReason: context.retryReason });
      });
    });

    const first = emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' });
    await first.ack;
    const second = emu.redeliver(first.envelopeId);
    await second.ack;

    await emu.waitFor(() => seen.length === 2);
    expect(seen).toEqual([
      { retryNum: undefined, retryReason: undefined },
      { retryNum: 1, retryReason: 'timeout' },
    ]);
    expect(emu.envelopes.map((envelope) => [envelope.retryAttempt, envelope.firstEnvelopeId])).toEqual([
      [0, first.envelopeId],
      [1, first.envelopeId],
    ]);
    expect(emu.envelopes[1]?.payload).toEqual(emu.envelopes[0]?.payload);
  });

  it('enforces the 3 s ack deadline and records the late ack', async ({ harness }) => {
    const emu = await harness.emulator();
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack }) => {
        // Ack once the emulator has expired the envelope: late by construction, not by a margin.
        await waitFor(() => emu.envelopes[0]?.timedOut, 10_000, 'the ack deadline');
        await ack();
      });
    });

    const { envelopeId, ack } = emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' });
    const error = await ack.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(AckTimeoutError);
    expect(error).toMatchObject({ envelopeId, timeoutMs: 3000 });
    const late = await emu.waitFor(() => emu.envelopes[0]?.ack, 10_000, 'the late ack');
    expect(late.late).toBe(true);
    expect(late.latencyMs).toBeGreaterThanOrEqual(3000);
    expect(emu.envelopes[0]?.timedOut).toBe(true);
  });

  it('redelivers once, with retry_attempt 1, an envelope not acked in time', async ({ harness }) => {
    const emu = await harness.emulator({ ackTimeoutMs: 200, redeliverOnAckTimeout: true });
    const retryNums: Array<number | undefined> = [];
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, context }) => {
        retryNums.push(context.retryNum);
        // The first delivery "hangs" past the deadline; the retry is answered.
        if (context.retryNum === 1) await ack();
      });
    });

    const first = emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' });
    await expect(first.ack).rejects.toBeInstanceOf(AckTimeoutError);
    const retry = await emu.waitFor(() => emu.envelopes.find((envelope) => envelope.ack !== undefined));
    expect(retry).toMatchObject({
      retryAttempt: 1,
      retryReason: 'timeout',
      firstEnvelopeId: first.envelopeId,
    });
    expect(emu.envelopes[0]?.timedOut).toBe(true);
    // Every envelope acked or expired: no ack timer is left that could deliver again.
    expect(emu.envelopes.every((envelope) => envelope.ack !== undefined || envelope.timedOut)).toBe(true);
    expect(emu.envelopes).toHaveLength(2);
    expect(retryNums).toEqual([undefined, 1]);
  });

  it("answers the client's pings, so the connection outlives the pong timeout", async ({ harness }) => {
    const emu = await harness.emulator();
    // A 600 ms pong timeout makes the client ping every 200 ms; without pongs it gives up at ~800 ms.
    const receiver = new SocketModeReceiver({
      appToken: 'xapp-test',
      logger: harness.logger,
      clientPingTimeout: 600,
      installerOptions: { clientOptions: harness.clientOptions(emu) },
    });
    await harness.start(
      new App({
        token: 'xoxb-test',
        receiver,
        logger: harness.logger,
        deferInitialization: true,
        clientOptions: harness.clientOptions(emu),
      }),
    );

    // Ten answered pings span ~2 s, well past the ~800 ms after which the client gives up without pongs.
    await emu.waitFor(() => emu.pingsAnswered >= 10, 15_000, 'ten pings answered');
    expect(emu.connectionsOpened).toBe(1);
    expect(emu.socketConnections).toBe(1);
    expect(harness.logger.lines.filter((line) => line.includes('pong'))).toEqual([]);
  });

  it('sends a button click on a stored message to the action handler', async ({ harness }) => {
    const emu = await harness.emulator();
    const bodies: unknown[] = [];
    const app = await harness.socketApp(emu, (bolt) => {
      bolt.action('okome_ack', async ({ ack, body, respond }) => {
        await ack();
        bodies.push(body);
        await respond({ replace_original: true, text: 'INC-1 acknowledged by <@U2>' });
      });
    });
    const posted = await app.client.chat.postMessage({ channel: 'C1', ...ackButtonMessage() });
    const messageTs = posted.ts ?? '';

    const { ack } = emu.click({ userId: 'U2', channelId: 'C1', messageTs, actionId: 'okome_ack' });
    await ack;
    await emu.waitFor(() => emu.responses.length === 1, 2000, 'the respond() post');

    expect(bodies[0]).toMatchObject({
      type: 'block_actions',
      user: { id: 'U2', username: 'u2', name: 'u2', team_id: 'T1' },
      team: { id: 'T1', domain: 't' },
      api_app_id: 'A1',
      container: { type: 'message', message_ts: messageTs, channel_id: 'C1', is_ephemeral: false },
      channel: { id: 'C1', name: 'c1' },
      message: { type: 'message', ts: messageTs, bot_id: 'B0BOT', blocks: ackButtonMessage().blocks },
      actions: [
        {
          action_id: 'okome_ack',
          block_id: 'incident-actions',
          value: 'INC-1',
          type: 'button',
          style: 'primary',
          text: { type: 'plain_text', text: 'Acknowledge' },
        },
      ],
    });
    expect(emu.envelopes[0]).toMatchObject({ type: 'interactive', acceptsResponsePayload: false });
    expect(emu.message('C1', messageTs)).toMatchObject({ text: 'INC-1 acknowledged by <@U2>', edits: 1 });
  });

  it('refuses to click a button that the stored message does not have', async ({ harness }) => {
    const emu = await harness.emulator();
    const app = await harness.socketApp(emu);
    const posted = await app.client.chat.postMessage({ channel: 'C1', ...ackButtonMessage() });

    expect(() =>
      emu.click({ userId: 'U2', channelId: 'C1', messageTs: posted.ts ?? '', actionId: 'okome_restart' }),
    ).toThrow(/no element with action_id "okome_restart"/);
    expect(emu.envelopes).toHaveLength(0);
  });

  it('delivers Events API envelopes', async ({ harness }) => {
    const emu = await harness.emulator();
    const mentions: string[] = [];
    await harness.socketApp(emu, (app) => {
      app.event('app_mention', async ({ event }) => {
        mentions.push(event.text);
      });
    });

    const { ack } = emu.event({
      type: 'app_mention',
      user: 'U1',
      channel: 'C1',
      text: '<@U0BOT> status',
      ts: '1.0',
    });
    await ack;
    await emu.waitFor(() => mentions.length === 1);
    expect(mentions).toEqual(['<@U0BOT> status']);
    expect(emu.envelopes[0]?.payload).toMatchObject({ type: 'event_callback', event_id: 'Ev00000001' });
  });
});

// Socket Mode waits ~5 s before reconnecting: these two run side by side.
describe.concurrent('Socket Mode reconnects', () => {
  it('reconnects after disconnect(refresh_requested) and the next command works', {
    timeout: 20_000,
  }, async ({ harness }) => {
    const emu = await harness.emulator();
    const texts: string[] = [];
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack, command }) => {
        await ack();
        texts.push(command.text);
      });
    });

    expect(emu.sendDisconnect('refresh_requested')).toBe(1);
    expect(emu.socketConnections).toBe(0);
    await emu.waitForSocket(15_000);
    expect(emu.connectionsOpened).toBe(2);
    expect(emu.callsTo('apps.connections.open')).toHaveLength(2);

    await emu.slash({ userId: 'U1', channelId: 'C1', text: 'after refresh' }).ack;
    await emu.waitFor(() => texts.length === 1);
    expect(texts).toEqual(['after refresh']);
  });

  it('loses envelopes while the socket is down and reconnects after a drop', { timeout: 20_000 }, async ({
    harness,
  }) => {
    const emu = await harness.emulator();
    await harness.socketApp(emu, (app) => {
      app.command('/okome', async ({ ack }) => {
        await ack();
      });
    });

    expect(emu.dropSocket()).toBe(1);
    await emu.waitFor(() => emu.socketConnections === 0);
    const lost = emu.slash({ userId: 'U1', channelId: 'C1', text: 'into the void' });
    await expect(lost.ack).rejects.toBeInstanceOf(EnvelopeLostError);
    expect(emu.envelopes[0]?.delivered).toBe(false);

    await emu.waitForSocket(15_000);
    expect(emu.connectionsOpened).toBe(2);
    await expect(emu.slash({ userId: 'U1', channelId: 'C1', text: 'back' }).ack).resolves.toMatchObject({
      payload: {},
    });
  });
});

describe('Web API', () => {
  it('keeps a message model: threads, chat.update in place, message_not_found', async ({ harness }) => {
    const emu = await harness.emulator();
    const { client } = await harness.socketApp(emu);

    const parent = await client.chat.postMessage({ channel: 'C1', text: 'INC-1 opened' });
    const parentTs = parent.ts ?? '';
    await client.chat.postMessage({ channel: 'C1', text: 'checking redis', thread_ts: parentTs });
    await client.chat.postMessage({
      channel: 'C1',
      text: 'failover done',
      thread_ts: parentTs,
      reply_broadcast: true,
    });
    await client.chat.postMessage({ channel: 'C2', text: 'elsewhere' });
    await client.chat.update({
      channel: 'C1',
      ts: parentTs,
      text: 'INC-1 resolved',
      blocks: [section('resolved')],
    });

    expect(emu.messagesIn('C1').map((message) => message.text)).toEqual(['INC-1 resolved', 'failover done']);
    const thread = emu.threadOf('C1', parentTs);
    expect(thread.map((message) => message.text)).toEqual([
      'INC-1 resolved',
      'checking redis',
      'failover done',
    ]);
    const timestamps = thread.map((message) => message.ts);
    expect([...timestamps].sort()).toEqual(timestamps);
    expect(new Set(timestamps).size).toBe(3);
    expect(thread[0]).toMatchObject({ edits: 1, blocks: [section('resolved')] });
    expect(thread[2]).toMatchObject({ threadTs: parentTs, replyBroadcast: true });
    expect(emu.callsTo('chat.postMessage')[2]?.params.reply_broadcast).toBe('true');

    const missing = await platformError(client.chat.update({ channel: 'C1', ts: '1.000001', text: 'nope' }));
    expect(missing).toMatchObject({
      code: webApi.ErrorCode.PlatformError,
      ok: false,
      error: 'message_not_found',
    });
  });

  it('tells onChange listeners of posts, replies, updates, deletes and ephemerals, in order', async ({
    harness,
  }) => {
    const emu = await harness.emulator();
    const seen: string[] = [];
    const unsubscribe = emu.onChange((change) => {
      if (change.kind === 'ephemeral')
        seen.push(`ephemeral ${change.ephemeral.user} ${change.ephemeral.text}`);
      else {
        const m = change.message;
        seen.push(
          `${m.deleted ? 'deleted' : m.edits > 0 ? 'updated' : 'posted'} ${m.threadTs ?? '-'} ${m.text}`,
        );
      }
    });
    // A listener that throws is removed and noted, and never fails the caller's Web API call.
    emu.onChange(() => {
      throw new Error('listener bug');
    });
    const app = await harness.socketApp(emu, (bolt) => {
      bolt.action('okome_ack', async ({ ack, respond }) => {
        await ack();
        await respond({ delete_original: true });
      });
    });
    const { client } = app;

    const parent = await client.chat.postMessage({ channel: 'C1', ...ackButtonMessage() });
    const parentTs = parent.ts ?? '';
    await client.chat.postMessage({ channel: 'C1', text: 'checking redis', thread_ts: parentTs });
    await client.chat.update({
      channel: 'C1',
      ts: parentTs,
      text: 'INC-1 acknowledged',
      blocks: ackButtonMessage().blocks,
    });
    await client.chat.postEphemeral({ channel: 'C1', user: 'U7', text: 'only for you' });
    await emu.click({ userId: 'U2', channelId: 'C1', messageTs: parentTs, actionId: 'okome_ack' }).ack;
    await emu.waitFor(() => seen.length === 5, 2000, 'the delete');

    expect(seen).toEqual([
      `posted - ${ackButtonMessage().text}`,
      `posted ${parentTs} checking redis`,
      'updated - INC-1 acknowledged',
      'ephemeral U7 only for you',
      'deleted - INC-1 acknowledged',
    ]);
    expect(emu.warnings.filter((w) => w.includes('listener bug'))).toHaveLength(1);
    expect(emu.callsTo('chat.postMessage').every((call) => call.response.ok === true)).toBe(true);

    unsubscribe();
    await client.chat.postMessage({ channel: 'C1', text: 'after unsubscribe' });
    expect(seen).toHaveLength(5);
  });

  it('answers users.info, usergroups.users.list, chat.postEphemeral and views.open', async ({ harness }) => {
    const emu = await harness.emulator();
    emu.setUser('U1', { name: 'alice' });
    emu.setUser('U9', { name: 'gone', deleted: true });
    emu.setUsergroup('S123', ['U1', 'U2']);
    let opened: unknown;
    let rejected: unknown;
    const app = await harness.socketApp(emu, (bolt) => {
      bolt.command('/okome', async ({ ack, client, command }) => {
        await ack();
        const title = { type: 'plain_text' as const, text: 'Runbook' };
        opened = await client.views.open({
          trigger_id: command.trigger_id,
          view: { type: 'modal', title, blocks: [section('step 1')] },
        });
        rejected = await platformError(
          client.views.open({
            trigger_id: command.trigger_id,
            view: { type: 'modal', title, blocks: Array.from({ length: 101 }, () => section('.')) },
          }),
        );
      });
    });
    const { client } = app;

    expect((await client.users.info({ user: 'U1' })).user).toMatchObject({
      id: 'U1',
      name: 'alice',
      is_bot: false,
    });
    expect((await client.users.info({ user: 'U9' })).user).toMatchObject({ deleted: true });
    expect(await platformError(client.users.info({ user: 'nobody' }))).toMatchObject({
      error: 'user_not_found',
    });
    expect((await client.usergroups.users.list({ usergroup: 'S123' })).users).toEqual(['U1', 'U2']);
    expect(await platformError(client.usergroups.users.list({ usergroup: 'S404' }))).toMatchObject({
      error: 'no_such_subteam',
    });

    const ephemeral = await client.chat.postEphemeral({ channel: 'C1', user: 'U1', text: 'just for you' });
    expect(ephemeral.message_ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(emu.ephemeralsIn('C1')).toEqual([
      expect.objectContaining({ user: 'U1', via: 'chat.postEphemeral' }),
    ]);
    expect(emu.messagesIn('C1')).toEqual([]);

    await emu.slash({ userId: 'U1', channelId: 'C1', text: 'runbook' }).ack;
    await emu.waitFor(() => rejected);
    expect(opened).toMatchObject({ ok: true, view: { id: expect.stringMatching(/^V/), type: 'modal' } });
    expect(emu.callsTo('views.open')[0]?.params.view).toMatchObject({ type: 'modal' });
    expect(rejected).toMatchObject({
      error: 'invalid_arguments',
      errors: [expect.stringContaining('/view/blocks')],
    });
    const view = {
      type: 'modal' as const,
      title: { type: 'plain_text' as const, text: 'Runbook' },
      blocks: [],
    };
    expect(await platformError(client.views.open({ trigger_id: 'made-up', view }))).toMatchObject({
      error: 'invalid_trigger_id',
    });
  });

  it('a 429 fault carries Retry-After, and the Bolt client waits it out', async ({ harness }) => {
    const emu = await harness.emulator();
    const app = await harness.socketApp(emu, () => undefined, {
      retryConfig: { retries: 1, minTimeout: 0, maxTimeout: 0 },
    });
    const rateLimited: number[] = [];
    app.client.on(webApi.WebClientEvent.RATE_LIMITED, (retryAfterSec: number) =>
      rateLimited.push(retryAfterSec),
    );
    emu.fault({ method: 'chat.postMessage', kind: 'rate_limited', retryAfterSec: 1, times: 1 });

    const posted = await app.client.chat.postMessage({ channel: 'C1', text: 'eventually' });

    const [limited, retried] = emu.callsTo('chat.postMessage');
    expect(limited).toMatchObject({
      status: 429,
      headers: { 'retry-after': '1' },
      fault: { kind: 'rate_limited' },
    });
    expect(retried).toMatchObject({ status: 200, fault: undefined });
    expect((retried?.time ?? 0) - (limited?.time ?? 0)).toBeGreaterThanOrEqual(1000);
    expect(rateLimited).toEqual([1]);
    expect(emu.messagesIn('C1').map((message) => message.ts)).toEqual([posted.ts]);
  });

  it('injects http_500 and ok_false faults, limited by times, forMs and clearFaults', async ({ harness }) => {
    const clock = { ms: Date.now() };
    const emu = await harness.emulator({ faultClock: () => clock.ms });
    const { client } = await harness.socketApp(emu);

    emu.fault({ method: 'chat.postMessage', kind: 'http_500', times: 1 });
    const http = await client.chat.postMessage({ channel: 'C1', text: 'x' }).catch((error: unknown) => error);
    expect(http).toMatchObject({ code: webApi.ErrorCode.HTTPError, statusCode: 500 });
    await client.chat.postMessage({ channel: 'C1', text: 'after one 500' });

    emu.fault({ kind: 'ok_false', error: 'channel_not_found', forMs: 150 });
    expect(await platformError(client.users.info({ user: 'U1' }))).toMatchObject({
      error: 'channel_not_found',
    });
    clock.ms += 150;
    await client.users.info({ user: 'U1' });

    emu.fault({ method: 'users.info', kind: 'ok_false', error: 'ratelimited' });
    expect(await platformError(client.users.info({ user: 'U1' }))).toMatchObject({ error: 'ratelimited' });
    await client.chat.postMessage({ channel: 'C1', text: 'other methods unaffected' });
    emu.clearFaults();
    await client.users.info({ user: 'U1' });

    expect(emu.calls.filter((call) => call.fault !== undefined).map((call) => call.fault?.kind)).toEqual([
      'http_500',
      'ok_false',
      'ok_false',
    ]);
    expect(emu.messagesIn('C1')).toHaveLength(2);
  });

  it('rejects Block Kit limit violations as Slack does', async ({ harness }) => {
    const emu = await harness.emulator();
    const responds: Array<Promise<unknown>> = [];
    const app = await harness.socketApp(emu, (bolt) => {
      bolt.command('/okome', async ({ ack, respond }) => {
        await ack();
        responds.push(
          respond({
            text: 'x',
            blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }],
          }),
        );
      });
    });
    const { client } = app;

    const tooMany = await platformError(
      client.chat.postMessage({
        channel: 'C1',
        text: 'x',
        blocks: Array.from({ length: 51 }, () => section('.')),
      }),
    );
    expect(tooMany).toMatchObject({
      error: 'invalid_blocks',
      errors: [expect.stringContaining('[json-pointer:/blocks]')],
    });

    const longSection = await platformError(
      client.chat.postMessage({ channel: 'C1', text: 'x', blocks: [section('s'.repeat(3001))] }),
    );
    expect(longSection).toMatchObject({
      error: 'invalid_blocks',
      errors: ['must be less than 3001 characters, got 3001 [json-pointer:/blocks/0/text/text]'],
    });

    const button = (actionId: string): types.Button => ({
      type: 'button',
      action_id: actionId,
      text: { type: 'plain_text', text: 'Go' },
    });
    const duplicate = await platformError(
      client.chat.postMessage({
        channel: 'C1',
        text: 'x',
        blocks: [{ type: 'actions', elements: [button('a'), button('a')] }],
      }),
    );
    expect(duplicate.errors).toEqual([
      expect.stringMatching(/duplicate action_id "a".*elements\/1\/action_id/),
    ]);

    expect(
      await platformError(client.chat.postMessage({ channel: 'C1', text: 'x'.repeat(40_001) })),
    ).toMatchObject({ error: 'msg_too_long' });
    await client.chat.postMessage({ channel: 'C1', text: 'y'.repeat(4001) });
    expect(emu.warnings).toEqual([expect.stringMatching(/^chat\.postMessage: text is 4001 characters/)]);

    const posted = await client.chat.postMessage({ channel: 'C1', text: 'ok' });
    expect(
      await platformError(
        client.chat.update({ channel: 'C1', ts: posted.ts ?? '', text: 'x', blocks: [{ type: 'nope' }] }),
      ),
    ).toMatchObject({ error: 'invalid_blocks' });
    expect(emu.message('C1', posted.ts ?? '')?.text).toBe('ok');

    await emu.slash({ userId: 'U1', channelId: 'C1', text: 'status' }).ack;
    await emu.waitFor(() => responds.length === 1);
    await expect(responds[0]).rejects.toMatchObject({ statusCode: 400 });
    expect(emu.responses[0]).toMatchObject({ status: 400, error: 'invalid_blocks' });

    expect(emu.messagesIn('C1').map((message) => message.text.slice(0, 2))).toEqual(['yy', 'ok']);
  });

  it('accepts JSON bodies, checks token types, and answers unknown methods', async ({ harness }) => {
    const emu = await harness.emulator();
    const call = async (method: string, token: string | undefined, body: Record<string, unknown>) => {
      const response = await fetch(`${emu.apiUrl}${method}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };

    const posted = await call('chat.postMessage', 'xoxb-test', {
      channel: 'C1',
      blocks: [section('json')],
      text: 'j',
    });
    expect(posted).toMatchObject({ status: 200, body: { ok: true, channel: 'C1' } });
    expect(emu.callsTo('chat.postMessage')[0]?.params.blocks).toEqual([section('json')]);
    expect((await call('chat.postMessage', 'xapp-test', { channel: 'C1', text: 'j' })).body).toMatchObject({
      error: 'not_allowed_token_type',
    });
    expect((await call('apps.connections.open', 'xoxb-test', {})).body).toMatchObject({
      error: 'not_allowed_token_type',
    });
    expect((await call('auth.test', undefined, {})).body).toMatchObject({ ok: false, error: 'not_authed' });
    expect((await call('chat.postMessage', 'xoxb-test', { channel: 'C1' })).body).toMatchObject({
      error: 'no_text',
    });
    expect((await call('pins.add', 'xoxb-test', {})).body).toMatchObject({
      ok: false,
      error: 'unknown_method',
    });
  });
});

describe('HTTP mode with the real Bolt HTTPReceiver', () => {
  it('handles a validly signed slash command', async ({ harness }) => {
    const emu = await harness.emulator();
    const { url } = await harness.httpApp(emu, (app) => {
      app.command('/okome', async ({ ack, command, client }) => {
        await ack({ text: 'on it' });
        await client.chat.postMessage({ channel: command.channel_id, text: `status: ${command.text}` });
      });
    });

    const reply = await emu.httpSlash(url, SIGNING_SECRET, { userId: 'U1', channelId: 'C1', text: 'status' });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ text: 'on it' });
    expect(reply.latencyMs).toBeLessThan(3000);
    await emu.waitFor(() => emu.messagesIn('C1').length === 1);
    expect(emu.messagesIn('C1')[0]?.text).toBe('status: status');
  });

  it.for(['forged', 'missing', 'stale'] as const)(
    'answers 401 to a %s signature',
    async (signature, { harness }) => {
      const emu = await harness.emulator();
      let handled = false;
      const { url } = await harness.httpApp(emu, (app) => {
        app.command('/okome', async ({ ack }) => {
          handled = true;
          await ack();
        });
      });

      const reply = await emu.httpSlash(
        url,
        SIGNING_SECRET,
        { userId: 'U1', channelId: 'C1' },
        { signature },
      );
      expect(reply).toMatchObject({ status: 401, body: '' });
      expect(handled).toBe(false);
    },
  );

  it('sends signed clicks, and retry headers reach context.retryNum', async ({ harness }) => {
    const emu = await harness.emulator();
    const seen: Array<{ value: string | undefined; retryNum: number | undefined }> = [];
    const { app, url } = await harness.httpApp(emu, (bolt) => {
      bolt.action('okome_ack', async ({ ack, action, context }) => {
        await ack();
        seen.push({ value: 'value' in action ? action.value : undefined, retryNum: context.retryNum });
      });
    });
    const posted = await app.client.chat.postMessage({ channel: 'C1', ...ackButtonMessage() });
    const click = { userId: 'U2', channelId: 'C1', messageTs: posted.ts ?? '', actionId: 'okome_ack' };

    expect((await emu.httpClick(url, SIGNING_SECRET, click)).status).toBe(200);
    const retried = await emu.httpClick(url, SIGNING_SECRET, click, {
      retryNum: 1,
      retryReason: 'http_timeout',
    });
    expect(retried.status).toBe(200);
    expect(seen).toEqual([
      { value: 'INC-1', retryNum: undefined },
      { value: 'INC-1', retryNum: 1 },
    ]);
  });
});

describe('emulator internals', () => {
  it('generates Slack timestamps that increase within a second and across a full sequence', () => {
    const first = nextTimestamp(undefined, 1_700_000_000_500);
    const second = nextTimestamp(first, 1_700_000_000_900);
    expect([formatTimestamp(first), formatTimestamp(second)]).toEqual([
      '1700000000.000001',
      '1700000000.000002',
    ]);
    const rolled = nextTimestamp({ seconds: 1_700_000_000, sequence: 999_999 }, 1_700_000_000_000);
    expect(formatTimestamp(rolled)).toBe('1700000001.000001');
    // A clock that steps back never makes a ts go back.
    expect(formatTimestamp(nextTimestamp(second, 1_600_000_000_000))).toBe('1700000000.000003');
  });

  it('parses masked client frames split across chunks, and encodes long server frames', () => {
    const payload = Buffer.from('x'.repeat(300));
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((byte, index) => byte ^ (mask[index % 4] ?? 0)));
    const header = Buffer.from([0x81, 0x80 | 126, 0x01, 0x2c]);
    const frame = Buffer.concat([header, mask, masked]);

    expect(readClientFrame(frame.subarray(0, 3))).toBeUndefined();
    expect(readClientFrame(frame.subarray(0, 100))).toBeUndefined();
    const parsed = readClientFrame(frame);
    expect(parsed).toMatchObject({ fin: true, opcode: 1, size: frame.length });
    expect(parsed instanceof Error ? '' : parsed?.payload.toString()).toBe(payload.toString());
    expect(readClientFrame(Buffer.from([0x81, 0x01, 0x61]))).toBeInstanceOf(Error);

    const long = encodeServerFrame(1, Buffer.alloc(70_000));
    expect([long.readUInt8(0), long.readUInt8(1), Number(long.readBigUInt64BE(2))]).toEqual([
      0x81, 127, 70_000,
    ]);
  });

  it('waitFor names what it waited for and quotes the last failure', async ({ harness }) => {
    const emu = await harness.emulator();
    await expect(
      emu.waitFor(
        () => {
          throw new Error('not yet');
        },
        60,
        'the impossible',
      ),
    ).rejects.toThrow('waitFor timed out after 60 ms waiting for the impossible: last error: not yet');
  });

  it('closes everything, a connected Socket Mode client included, and binds another host', async ({
    harness,
  }) => {
    const emu = await startSlackEmulator({ host: '127.0.0.2' });
    expect(emu.apiUrl).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/api\/$/);
    const app = new App({
      token: 'xoxb-test',
      appToken: 'xapp-test',
      socketMode: true,
      logger: harness.logger,
      deferInitialization: true,
      clientOptions: harness.clientOptions(emu),
    });
    try {
      await app.init();
      await app.start();
      expect(emu.socketConnections).toBe(1);
      // The client is still connected: close() must not wait for it to leave.
      const startedAt = performance.now();
      await emu.close();
      expect(performance.now() - startedAt).toBeLessThan(1000);
      await expect(fetch(`${emu.apiUrl}auth.test`, { method: 'POST' })).rejects.toThrow();
    } finally {
      await app.stop();
      await emu.close();
    }
  });
});
