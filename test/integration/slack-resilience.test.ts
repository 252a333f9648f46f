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
      await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
      await new Promise((r) => setTimeout(r, 4000));
      await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'validate' }).ack;
      await new Promise((r) => setTimeout(r, 26_000));
      const refused = emulator.calls.filter((c) => c.status === 429 || c.status === 500).length;
      expect(refused).toBeGreaterThan(0);
      const path = cfg.config.store.path;
      const rows = await until(
        () => {
          const r = outboxRows(path);
          return r.every((x) => x.state === 'sent') ? r : undefined;
        },
        60_000,
        'every outbox row sent',
      );
      expect(rows.filter((r) => r.state !== 'sent')).toEqual([]);
      expectOrderedPerQueue(rows);
      expect(emulator.messagesIn('C0OPS').some((m) => m.text.startsWith('OKOME status'))).toBe(true);
      expect(emulator.messagesIn('C0OPS').some((m) => m.text.startsWith('OKOME validation'))).toBe(true);
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
      children.push(child);
      return child;
    };
    emulator.fault({ method: 'chat.postMessage', kind: 'http_500', forMs: 600_000 });
    emulator.fault({ method: 'chat.update', kind: 'http_500', forMs: 600_000 });
    const first = start();
    await emulator.waitForSocket(20_000);
    await emulator.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    const path = config.config.store.path;
    // Wait until the diagnosis is done and its messages sit undelivered in the outbox: they are
    // written one by one, so the first incident row alone is not enough; wait for the count to rest.
    let seen = -1;
    let restingSince = Date.now();
    await until(
      () => {
        const rows = outboxRows(path);
        if (rows.length !== seen) {
          seen = rows.length;
          restingSince = Date.now();
          return false;
        }
        return rows.some((r) => r.queue_key.startsWith('C0INCIDENT')) && Date.now() - restingSince >= 1000;
      },
      30_000,
      'incident messages in the outbox',
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
});
