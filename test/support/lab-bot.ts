import type { ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/load-config.js';
import type { Lab } from './lab/lab.js';
import { LAB_ALERTMANAGER_TOKEN, LAB_KEEPALIVED_SECRET, PORTS } from './lab/topology.js';
import type { SlackEmulator, StoredMessage } from './slack-emulator/index.js';

export interface AuditRow {
  approval_id: string | null;
  actor: string;
  event: string;
  verdict: string;
  code: string;
  reason: string;
  state_before: string | null;
  state_after: string | null;
}

/**
 * The bot as operators run it (`okome serve`), inside the lab's bot namespace, talking to the
 * Slack emulator on the root side of the point-to-point link; plus helpers that act as people.
 */
export class LabBot {
  private child: ChildProcess | undefined;
  readonly log: string[] = [];
  readonly channel: string;

  constructor(
    readonly lab: Lab,
    readonly emu: SlackEmulator,
    readonly configPath: string = lab.configPath,
  ) {
    this.channel = loadConfig(configPath).slack.incidentChannel;
  }

  get storePath(): string {
    return loadConfig(this.configPath).store.path;
  }

  async start(env: NodeJS.ProcessEnv = {}): Promise<void> {
    const opened = this.emu.connectionsOpened;
    const child = this.lab.spawnInBot(
      process.execPath,
      ['--import', 'tsx', 'src/cli/okome.ts', 'serve', '--config', this.configPath],
      {
        env: {
          ...process.env,
          SLACK_BOT_TOKEN: 'xoxb-lab',
          SLACK_APP_TOKEN: 'xapp-lab',
          SLACK_API_URL: this.emu.apiUrl,
          OKOME_LOG_LEVEL: 'warn',
          OKOME_KEEPALIVED_SECRET: LAB_KEEPALIVED_SECRET,
          OKOME_ALERTMANAGER_TOKEN: LAB_ALERTMANAGER_TOKEN,
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (d: Buffer) => this.log.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.log.push(d.toString()));
    this.child = child;
    await this.emu.waitFor(() => this.emu.connectionsOpened > opened, 30_000, 'the bot to open Socket Mode');
    await this.emu.waitForSocket(30_000);
  }

  /** The bot's /healthz, fetched over the link to its namespace. */
  async health(): Promise<{
    ok: boolean;
    vipWatch?: string;
    vipStream?: string[] | null;
    vipHolder?: string | null;
    deadman?: 'off' | 'waiting' | 'alive' | 'lost';
  }> {
    const r = await fetch(`http://${this.lab.botAddress}:${PORTS.botHttp}/healthz`);
    return (await r.json()) as never;
  }

  /** Until the VIP watcher has its baseline (who holds the VIP): only then can it see a move. */
  async vipWatching(timeoutMs = 20_000): Promise<void> {
    await this.emu.waitFor(
      async () => (await this.health().catch(() => undefined))?.vipWatch === 'watching',
      timeoutMs,
      'the VIP watcher to take its baseline',
    );
  }

  /** SIGKILL: no goodbye, nothing flushed. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 20_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  private summaries(): StoredMessage[] {
    return this.emu
      .messagesIn(this.channel)
      .filter((m) => m.threadTs === undefined && m.text.startsWith('OKOME status'));
  }

  /** Types `/okome status` and waits for the final report. */
  async status(user = 'U0REQUEST'): Promise<StoredMessage> {
    const before = new Set(this.summaries().map((m) => m.ts));
    const { ack } = this.emu.slash({ userId: user, channelId: this.channel, text: 'status' });
    await ack;
    return this.emu.waitFor(
      () => this.summaries().find((m) => !before.has(m.ts)),
      30_000,
      'the status report',
    );
  }

  /** The incident's channel message, by the start of its text ("Incident 1"). */
  async incidentRoot(prefix: string): Promise<StoredMessage> {
    return this.emu.waitFor(
      () =>
        this.emu
          .messagesIn(this.channel)
          .filter((m) => m.threadTs === undefined && m.text.startsWith(prefix))
          .at(-1),
      30_000,
      `the incident message "${prefix}"`,
    );
  }

  thread(root: StoredMessage): StoredMessage[] {
    return this.emu.threadOf(this.channel, root.ts);
  }

  /**
   * The newest pending approval card whose text starts with `label` ("Restart nginx on pi-a"),
   * in the thread of `root` when given (a failover's thread may offer the same fix).
   */
  async card(
    label: string,
    since = 0,
    root?: StoredMessage,
  ): Promise<{ message: StoredMessage; approvalId: string }> {
    const message = await this.emu.waitFor(
      () =>
        (root === undefined ? this.emu.messagesIn(this.channel) : this.emu.threadOf(this.channel, root.ts))
          .filter((m) => Number(m.ts) > since && m.text.startsWith(label) && m.text.endsWith(': pending'))
          .at(-1),
      30_000,
      `a pending card "${label}"`,
    );
    const match = /"value":"(ap_[A-Za-z0-9]+)"/.exec(JSON.stringify(message.blocks ?? []));
    if (match?.[1] === undefined) throw new Error(`card "${label}" has no approval button`);
    return { message, approvalId: match[1] };
  }

  click(
    user: string,
    card: { message: StoredMessage; approvalId: string },
    verb: 'approve' | 'reject' = 'approve',
  ) {
    return this.emu.click({
      userId: user,
      channelId: this.channel,
      messageTs: card.message.ts,
      actionId: `okome:${verb}:${card.approvalId}`,
      value: card.approvalId,
      // The card as first seen: a stale client view still sends the click; the bot must refuse it.
      seen: card.message,
    });
  }

  /** Waits until the card says its approval ended (succeeded, failed, cancelled…). */
  async outcome(card: { message: StoredMessage }, timeoutMs = 60_000): Promise<string> {
    return this.emu.waitFor(
      () => {
        const text = this.emu.message(this.channel, card.message.ts)?.text ?? '';
        const state = /: (\w+)$/.exec(text)?.[1];
        return state !== undefined && !['pending', 'approved', 'running'].includes(state) ? state : undefined;
      },
      timeoutMs,
      'the approval to end',
    );
  }

  /** The Ack button of an incident's root message, as the clicker's client shows it (`seen`). */
  clickAck(user: string, root: StoredMessage, seen = this.emu.message(this.channel, root.ts) ?? root) {
    const match = /"action_id":"(okome:ack:(\d+))"/.exec(JSON.stringify(seen.blocks ?? []));
    if (match?.[1] === undefined || match[2] === undefined) throw new Error('the root has no Ack button');
    return this.emu.click({
      userId: user,
      channelId: this.channel,
      messageTs: root.ts,
      actionId: match[1],
      value: match[2],
      seen,
    });
  }

  /** The ts of the newest message in the incident channel (0 when none): "cards since". */
  latestTs(): number {
    return Math.max(0, ...this.emu.messagesIn(this.channel).map((m) => Number(m.ts)));
  }

  /** The incident's root message, found through the store (the newest incident with that key). */
  async rootOf(key: string, timeoutMs = 30_000): Promise<StoredMessage> {
    return this.emu.waitFor(
      () => {
        const ts = this.query<{ ts: string | null }>(
          `SELECT m.ts FROM incidents i JOIN messages m ON m.ref = i.root_ref WHERE i.key = '${key.replaceAll("'", "''")}' ORDER BY i.id DESC LIMIT 1`,
        )[0]?.ts;
        return ts == null ? undefined : this.emu.message(this.channel, ts);
      },
      timeoutMs,
      `the root of incident ${key}`,
    );
  }

  /** Ephemeral messages shown to one user. */
  ephemerals(user: string): string[] {
    return this.emu
      .ephemeralsIn(this.channel)
      .filter((e) => e.user === user)
      .map((e) => e.text);
  }

  /** The audit trail as stored (the store file is on the shared filesystem). */
  audit(): AuditRow[] {
    return this.query<AuditRow>(
      'SELECT approval_id, actor, event, verdict, code, reason, state_before, state_after FROM audit ORDER BY id',
    );
  }

  auditOf(approvalId: string): AuditRow[] {
    return this.audit().filter((a) => a.approval_id === approvalId);
  }

  /**
   * Waits until every message the bot has queued reached Slack: the positive event after which
   * "nothing more was posted" can be asserted without a fixed sleep.
   */
  async outboxDrained(timeoutMs = 30_000): Promise<void> {
    await this.emu.waitFor(
      () => this.query<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE state = 'pending'")[0]?.n === 0,
      timeoutMs,
      'the outbox drained',
    );
  }

  private query<T>(sql: string): T[] {
    const db = new Database(this.storePath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  }

  approvalState(id: string): string | undefined {
    const db = new Database(this.storePath, { readonly: true, fileMustExist: true });
    try {
      const row = db.prepare('SELECT state FROM approvals WHERE id = ?').get(id) as
        | { state: string }
        | undefined;
      return row?.state;
    } finally {
      db.close();
    }
  }
}
