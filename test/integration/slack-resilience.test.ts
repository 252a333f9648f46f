import { type ChildProcess, spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** Nothing the bot meant to say is lost because Slack, or the bot itself, went down. */

let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>> | undefined;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  await piHttp?.close();
  cfg?.cleanup();
  app = emu = cfg = piHttp = undefined;
});

interface OutboxRow {
  seq: number;
  queue_key: string;
  op: string;
  state: string;
  ts: string | null;
}

/** The outbox as stored, with each post's Slack ts. */
function outboxRows(path: string): OutboxRow[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        `SELECT o.seq, o.queue_key, o.op, o.state, m.ts FROM outbox o LEFT JOIN messages m ON m.ref = o.message_ref ORDER BY o.seq`,
      )
      .all() as OutboxRow[];
  } finally {
    db.close();
  }
}

/**
 * A row for `channel` whose text starts with `prefix` is in the outbox: an update, or the
 * pending post it was merged into (the outbox coalesces updates of a message not yet sent).
 */
function summaryQueued(path: string, channel: string, prefix: string): boolean {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const payloads = db
      .prepare(`SELECT payload FROM outbox WHERE channel = ? AND op IN ('post', 'update')`)
      .pluck()
      .all(channel) as string[];
    return payloads.some((p) => {
      const text: unknown = (JSON.parse(p) as { text?: unknown }).text;
      return typeof text === 'string' && text.startsWith(prefix);
    });
  } finally {
    db.close();
  }
}

/** Every post of a queue got its ts in enqueue order: Slack saw them in the order the bot wrote them. */
function expectOrderedPerQueue(rows: readonly OutboxRow[]): void {
  const byQueue = new Map<string, string[]>();
  for (const r of rows.filter((x) => x.op === 'post')) {
    expect(r.ts, `post ${r.seq} has a ts`).not.toBeNull();
    byQueue.set(r.queue_key, [...(byQueue.get(r.queue_key) ?? []), r.ts ?? '']);
  }
  for (const [queue, tss] of byQueue) {
    const sorted = [...tss].sort((a, b) => Number(a) - Number(b));
    expect(tss, queue).toEqual(sorted);
  }
}

async function until<T>(probe: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Slack down, bot down', () => {
  it('Slack answering 429 and 500 for 30 s: every message arrives afterwards, in order, none lost', async () => {
    emu = await startSlackEmulator();
    cfg = await loopbackConfig();
    const emulator = emu;
    app = await startInProcessBot(cfg.config, emu);
    // 15 s of rate limiting, then 15 s of server errors, on every chat method.
    emulator.fault({ method: 'chat.postMessage', kind: 'rate_limited', retryAfterSec: 2, forMs: 15_000 });
    emulator.fault({ method: 'chat.update', kind: 'rate_limited', retryAfterSec: 2, forMs: 15_000 });
    const later = setTimeout(() => {
      emulator.fault({ method: 'chat.postMessage', kind: 'http_500', forMs: 15_000 });
      emulator.fault({ method: 'chat.update', kind: 'http_500', forMs: 15_000 });
    }, 15_000);
    try {
      const refusedWith = (status: number) =>
        emulator.calls.filter((c) => c.method.startsWith('chat.') && c.status === status).length;
      await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
      // The second command arrives while Slack is rate limiting the first one's messages.
      await emulator.waitFor(() => refusedWith(429) > 0, 15_000, 'a chat call answered 429');
      await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'validate' }).ack;
      // The bot keeps trying through the second fault phase too.
      await emulator.waitFor(() => refusedWith(500) > 0, 30_000, 'a chat call answered 500');
      const path = cfg.config.store.path;
      const reported = (prefix: string) =>
        emulator.messagesIn('C0OPS').some((m) => m.text.startsWith(prefix));
      const rows = await until(
        () => {
          const r = outboxRows(path);
          return r.every((x) => x.state === 'sent') &&
            reported('OKOME status') &&
            reported('OKOME validation')
            ? r
            : undefined;
        },
        60_000,
        'every outbox row sent and both reports in C0OPS',
      );
      expect(rows.filter((r) => r.state !== 'sent')).toEqual([]);
      expectOrderedPerQueue(rows);
    } finally {
      clearTimeout(later);
    }
  }, 120_000);

  it('SIGKILL of the bot with undelivered messages, then a restart, delivers them', async () => {
    emu = await startSlackEmulator();
    // pi-b answers HTTP, so the status finds incidents (a bot reaching nothing opens none).
    piHttp = await answeringPiHttp();
    cfg = await loopbackConfig(piHttp.override);
    const emulator = emu;
    const config = cfg;
    const start = () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/okome.ts', 'serve', '--config', config.path],
        {
          env: {
            ...process.env,
            SLACK_BOT_TOKEN: 'xoxb-test',
            SLACK_APP_TOKEN: 'xapp-test',
            SLACK_API_URL: emulator.apiUrl,
            OKOME_LOG_LEVEL: 'warn',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      // Drain the pipes: an unread pipe that fills up blocks the bot's logging.
      child.stdout?.resume();
      child.stderr?.resume();
      children.push(child);
      return child;
    };
    emulator.fault({ method: 'chat.postMessage', kind: 'http_500', forMs: 600_000 });
    emulator.fault({ method: 'chat.update', kind: 'http_500', forMs: 600_000 });
    const first = start();
    await emulator.waitForSocket(20_000);
    await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    const path = config.config.store.path;
    // Wait until the diagnosis is done and its messages sit undelivered in the outbox. The
    // incident rows are written before the summary that updates the progress message in C0OPS:
    // a kill between the two would lose a report never enqueued, not an undelivered one.
    await until(
      () => {
        const rows = outboxRows(path);
        return (
          rows.some((r) => r.queue_key.startsWith('C0INCIDENT')) &&
          summaryQueued(path, 'C0OPS', 'OKOME status')
        );
      },
      30_000,
      'incident messages and the status summary in the outbox',
    );
    const pending = outboxRows(path).filter((r) => r.state === 'pending').length;
    expect(pending).toBeGreaterThan(2);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    emulator.clearFaults();
    expect(emulator.messagesIn('C0OPS')).toEqual([]);
    start();
    const rows = await until(
      () => {
        const r = outboxRows(path);
        return r.every((x) => x.state === 'sent') ? r : undefined;
      },
      60_000,
      'every outbox row sent after the restart',
    );
    expectOrderedPerQueue(rows);
    expect(emulator.messagesIn('C0OPS').some((m) => m.text.startsWith('OKOME status'))).toBe(true);
    expect(emulator.messagesIn('C0INCIDENT').length).toBeGreaterThan(0);
  }, 120_000);

  it('disconnect with refresh_requested: the bot reconnects and the next command works', async () => {
    emu = await startSlackEmulator();
    cfg = await loopbackConfig();
    app = await startInProcessBot(cfg.config, emu);
    const opened = emu.connectionsOpened;
    emu.sendDisconnect('refresh_requested');
    await emu.waitFor(() => emu?.connectionsOpened === opened + 1, 20_000, 'a new Socket Mode connection');
    await emu.waitForSocket(20_000);
    const { payload } = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'help' }).ack;
    expect(payload).toMatchObject({ text: 'okome help' });
  }, 60_000);

  it.each([
    ['HTTP 500', { kind: 'http_500' }],
    ['429', { kind: 'rate_limited', retryAfterSec: 1 }],
  ] as const)(
    'apps.connections.open answering %s during a reconnect: the bot keeps trying and gets back',
    async (_, fault) => {
      emu = await startSlackEmulator();
      cfg = await loopbackConfig();
      app = await startInProcessBot(cfg.config, emu);
      await emu.waitForSocket(10_000);
      const opened = emu.connectionsOpened;
      // The socket-mode client used to take a 5xx here as final and stay disconnected.
      emu.fault({ method: 'apps.connections.open', times: 2, ...fault });
      emu.dropSocket();
      await emu.waitFor(() => emu?.connectionsOpened === opened + 1, 40_000, 'a new Socket Mode connection');
      expect(emu.callsTo('apps.connections.open').length).toBeGreaterThanOrEqual(4);
      await emu.waitForSocket(10_000);
      const { payload } = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'help' }).ack;
      expect(payload).toMatchObject({ text: 'okome help' });
    },
    60_000,
  );
});
