import { AsyncLocalStorage } from 'node:async_hooks';
import Database from 'better-sqlite3';
import type { Approval } from '../domain/approval.js';
import type { Drill, LastDrill } from '../domain/drill.js';
import { ErrorCode, OkomeError } from '../errors.js';
import {
  INCIDENT_COVERAGE_SQL,
  type IncidentCoverageSqlRow,
  toIncidentCoverage,
} from './coverage-queries.js';
import { MIGRATIONS, type Migration, migrate, schemaVersion } from './migrations.js';
import type {
  AlertFollowUp,
  AlertSilence,
  ChannelPacing,
  DeadmanRecord,
  InboxRow,
  Incident,
  IncidentAlert,
  IncidentCoverageRow,
  MessageRecord,
  NewOutboxRow,
  OpenHow,
  OpenIncidentInput,
  OutboxCounts,
  OutboxOp,
  OutboxRow,
  OutboxState,
  Store,
  StoredAuditEntry,
  TimelineEntry,
  TimelineKind,
  VipHolderRecord,
} from './store-port.js';
import {
  type AlertRow,
  DRILL_COLUMNS,
  drillColumns,
  type IncidentRow,
  lastPerIncident,
  type MessageRow,
  messageOf,
  newMessageRef,
  type OutboxDbRow,
  parseJson,
  RAN_OUTCOMES,
  type SilenceRow,
  type TimelineRow,
  toAlert,
  toDrill,
  toIncident,
  toJson,
  toLastDrill,
  toOutboxRow,
  toSilence,
} from './store-rows.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' for tests. */
  readonly path: string;
  /** How long a write waits for another connection's lock before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /**
   * 'full' (default) syncs the WAL on every commit, so what the outbox accepted survives a
   * power cut of the Pi, not only a crash of the process; 'normal' trades that for speed.
   */
  readonly synchronous?: 'full' | 'normal';
  /**
   * Read-only: for the CLI commands that read the store (`okome audit`) while a bot serves it.
   * The file must exist and be at this okome's schema; nothing is created, migrated or written.
   */
  readonly readOnly?: boolean;
  /** Tests only: another schema list. */
  readonly migrations?: readonly Migration[];
  readonly now?: () => number;
}

/** Opens (creating if needed) and migrates the database; throws OKOME_STORE_* errors that say how to fix. */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  if (options.readOnly === true) return openReadOnly(options);
  let db: Database.Database;
  try {
    db = new Database(options.path);
  } catch (error) {
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot open the database ${options.path}: ${messageOf(error)}. Check that store.path points into an ` +
        'existing, writable directory.',
      { cause: error, userSafe: true },
    );
  }
  try {
    // WAL: readers never block the writer, and a commit is one sequential append.
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('foreign_keys = ON');
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    migrate(db, options.migrations ?? MIGRATIONS, options.now);
    return new SqliteStore(db);
  } catch (error) {
    db.close();
    if (error instanceof OkomeError) throw error;
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot prepare the database ${options.path}: ${messageOf(error)}`,
      {
        cause: error,
        userSafe: true,
      },
    );
  }
}

/** A reader beside the serving bot: WAL lets it read committed rows while the bot writes. */
function openReadOnly(options: SqliteStoreOptions): SqliteStore {
  let db: Database.Database;
  try {
    db = new Database(options.path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot open the database ${options.path} to read it: ${messageOf(error)}. ` +
        '`okome serve` creates it on its first start: check store.path.',
      { cause: error, userSafe: true },
    );
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    const known = (options.migrations ?? MIGRATIONS).length;
    const version = schemaVersion(db);
    if (version !== known) {
      throw new OkomeError(
        version > known ? ErrorCode.StoreSchemaTooNew : ErrorCode.StoreFailed,
        `the database ${options.path} is at schema version ${version}; this okome-bot reads version ${known}. ` +
          (version > known
            ? 'A newer okome-bot wrote it: read it with that version.'
            : 'Start `okome serve` of this version once to migrate it.'),
        { userSafe: true },
      );
    }
    return new SqliteStore(db);
  } catch (error) {
    db.close();
    if (error instanceof OkomeError) throw error;
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot read the database ${options.path}: ${messageOf(error)}`,
      {
        cause: error,
        userSafe: true,
      },
    );
  }
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteStore implements Store {
  private readonly s: Statements;
  private readonly context = new AsyncLocalStorage<symbol>();
  /** The open `atomically` transaction: its context's token, and a promise settled at its end. */
  private tx: { token: symbol; done: Promise<void> } | undefined;
  private savepoints = 0;

  constructor(private readonly db: Database.Database) {
    this.s = prepareStatements(db);
  }

  /** One serving process per SQLite store (its serve lock): always the leader's term. */
  fenced<T>(_token: number, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  async close(): Promise<void> {
    await this.turn();
    if (this.db.open) this.db.close();
  }

  /** The connection's effective settings, for start-up logs and tests. */
  settings(): {
    path: string;
    schemaVersion: number;
    journalMode: string;
    foreignKeys: boolean;
    busyTimeoutMs: number;
    synchronous: string;
  } {
    const pragma = (name: string): unknown => this.db.pragma(name, { simple: true });
    return {
      path: this.db.name,
      schemaVersion: schemaVersion(this.db),
      journalMode: String(pragma('journal_mode')),
      foreignKeys: pragma('foreign_keys') === 1,
      busyTimeoutMs: Number(pragma('busy_timeout')),
      synchronous: ['off', 'normal', 'full', 'extra'][Number(pragma('synchronous'))] ?? 'unknown',
    };
  }

  /**
   * One transaction around an async `fn`. Store calls made inside `fn` (found by async context)
   * run in it; every other call waits until it commits, so nobody's writes slip into it and no
   * half-done transaction is seen. Keep `fn` to store work: no network inside, or everyone waits.
   * Nested calls become savepoints.
   */
  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    const open = this.tx;
    if (open !== undefined && this.context.getStore() === open.token) return this.savepoint(fn);
    // Waited for inline: nothing may run between seeing no transaction and taking it.
    for (let other = this.tx; other !== undefined; other = this.tx) await other.done;
    const token = Symbol('transaction');
    let release = (): void => {};
    this.tx = { token, done: new Promise((resolve) => (release = resolve)) };
    try {
      // IMMEDIATE takes the write lock up front: a read-then-write cannot be raced by another
      // connection (a second process on the same file).
      this.guardSync('begin a transaction', () => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await this.context.run(token, fn);
        this.guardSync('commit a transaction', () => this.db.exec('COMMIT'));
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    } finally {
      this.tx = undefined;
      release();
    }
  }

  private async savepoint<T>(fn: () => Promise<T>): Promise<T> {
    const name = `okome_${++this.savepoints}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await fn();
      this.db.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      this.db.exec(`ROLLBACK TO ${name}`);
      this.db.exec(`RELEASE ${name}`);
      throw error;
    }
  }

  /** Resolves when no other context's transaction is open. */
  private async turn(): Promise<void> {
    for (let open = this.tx; open !== undefined; open = this.tx) {
      if (this.context.getStore() === open.token) return;
      await open.done;
    }
  }

  /** A synchronous transaction of one method's statements (a savepoint inside `atomically`). */
  private inTx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ── incidents ───────────────────────────────────────────────────────────────────────

  async openOrReuseIncident(
    input: OpenIncidentInput,
    reopen: (latest: Incident) => boolean = () => false,
  ): Promise<{ incident: Incident; how: OpenHow }> {
    return this.guard('open or reuse an incident', () => {
      try {
        return this.inTx(() => this.openOrReuseLocked(input, reopen));
      } catch (error) {
        // The unique index is the last word if a writer somehow slipped past the lock.
        if (isUniqueViolation(error)) {
          const open = this.s.openIncidentByKey.get(input.key);
          if (open !== undefined) return { incident: toIncident(open), how: 'reused' as const };
        }
        throw error;
      }
    });
  }

  private openOrReuseLocked(
    input: OpenIncidentInput,
    reopen: (latest: Incident) => boolean,
  ): { incident: Incident; how: OpenHow } {
    const open = this.s.openIncidentByKey.get(input.key);
    if (open !== undefined) return { incident: toIncident(open), how: 'reused' };
    const latest = this.s.latestIncidentByKey.get(input.key);
    if (
      latest !== undefined &&
      reopen(toIncident(latest)) &&
      this.s.reopenIncident.run(latest.id).changes === 1
    ) {
      return { incident: this.requireIncident(latest.id), how: 'reopened' };
    }
    const { lastInsertRowid } = this.s.insertIncident.run({
      key: input.key,
      number: input.number,
      title: input.title,
      channel: input.channel,
      requester: input.requester,
      opened_at: input.now,
    });
    return { incident: this.requireIncident(Number(lastInsertRowid)), how: 'created' };
  }

  async acknowledgeIncident(id: number, user: string, now: number): Promise<boolean> {
    return this.guard(
      'acknowledge an incident',
      () => this.s.acknowledgeIncident.run(user, now, id).changes === 1,
    );
  }

  async resolveIncident(id: number, now: number, reason: string): Promise<boolean> {
    return this.guard('resolve an incident', () => this.s.resolveIncident.run(now, reason, id).changes === 1);
  }

  async openIncidents(): Promise<Incident[]> {
    return this.guard('list open incidents', () => this.s.openIncidents.all().map(toIncident));
  }

  async incidentByKey(key: string): Promise<Incident | undefined> {
    return this.guard('find an incident', () => {
      const row = this.s.latestIncidentByKey.get(key);
      return row === undefined ? undefined : toIncident(row);
    });
  }

  async latestIncidentWithNumber(number: string): Promise<Incident | undefined> {
    return this.guard('find an incident', () => {
      const row = this.s.latestIncidentWithNumber.get(number);
      return row === undefined ? undefined : toIncident(row);
    });
  }

  async incidentById(id: number): Promise<Incident | undefined> {
    return this.guard('find an incident', () => {
      const row = this.s.incidentById.get(id);
      return row === undefined ? undefined : toIncident(row);
    });
  }

  async saveReport(id: number, report: unknown): Promise<void> {
    return this.guard('save a report', () => {
      this.expectOne(this.s.saveReport.run(toJson(report), id).changes, `incident ${id}`);
    });
  }

  async setIncidentRootRef(id: number, rootRef: string): Promise<void> {
    return this.guard('set an incident root message', () => {
      this.expectOne(this.s.setRootRef.run(rootRef, id).changes, `incident ${id}`);
    });
  }

  private requireIncident(id: number): Incident {
    const row = this.s.incidentById.get(id);
    if (row === undefined)
      throw new OkomeError(ErrorCode.StoreFailed, `incident ${id} vanished after insert`);
    return toIncident(row);
  }

  // ── timeline ────────────────────────────────────────────────────────────────────────

  async appendTimeline(entry: {
    incidentId: number;
    at: number;
    kind: TimelineKind;
    text: string;
    data?: unknown;
  }): Promise<TimelineEntry> {
    return this.guard('append to the timeline', () => {
      const data = entry.data === undefined ? null : toJson(entry.data);
      const { lastInsertRowid } = this.s.appendTimeline.run(
        entry.incidentId,
        entry.at,
        entry.kind,
        entry.text,
        data,
      );
      return {
        id: Number(lastInsertRowid),
        incidentId: entry.incidentId,
        at: entry.at,
        kind: entry.kind,
        text: entry.text,
        data: data === null ? null : parseJson(data),
      };
    });
  }

  async timeline(incidentId: number): Promise<TimelineEntry[]> {
    return this.guard('read the timeline', () =>
      this.s.timeline.all(incidentId).map((row) => ({
        id: row.id,
        incidentId: row.incident_id,
        at: row.at,
        kind: row.kind,
        text: row.text,
        data: row.data === null ? null : parseJson(row.data),
      })),
    );
  }

  // ── seen events ─────────────────────────────────────────────────────────────────────

  async markSeen(key: string, now: number): Promise<boolean> {
    return this.guard('record a seen event', () => this.s.markSeen.run(key, now).changes === 1);
  }

  async pruneSeen(cutoff: number): Promise<number> {
    return this.guard('prune seen events', () => this.s.pruneSeen.run(cutoff).changes);
  }

  // ── messages and outbox ─────────────────────────────────────────────────────────────

  async createMessage(input: { channel: string; threadRef: string | null; now: number }): Promise<string> {
    return this.guard('create a message ref', () => {
      const ref = newMessageRef(input.now);
      this.s.insertMessage.run(ref, input.channel, input.threadRef, input.now);
      return ref;
    });
  }

  async message(ref: string): Promise<MessageRecord | undefined> {
    return this.guard('read a message', () => {
      const row = this.s.message.get(ref);
      if (row === undefined) return undefined;
      return {
        ref: row.ref,
        channel: row.channel,
        ts: row.ts,
        threadRef: row.thread_ref,
        postState: row.post_state,
      };
    });
  }

  async insertOutbox(row: NewOutboxRow): Promise<number> {
    return this.guard('enqueue a Slack call', () => {
      const { lastInsertRowid } = this.s.insertOutbox.run({
        channel: row.channel,
        queue_key: row.queueKey,
        op: row.op,
        message_ref: row.messageRef,
        thread_ref: row.threadRef,
        user: row.user,
        payload: row.payload,
        created_at: row.now,
      });
      return Number(lastInsertRowid);
    });
  }

  async pendingRowsForMessage(messageRef: string): Promise<OutboxRow[]> {
    return this.guard('read pending calls', () => this.s.pendingForMessage.all(messageRef).map(toOutboxRow));
  }

  async replacePayload(id: number, payload: string): Promise<void> {
    return this.guard('coalesce a pending call', () => {
      this.expectOne(this.s.replacePayload.run(payload, id).changes, `pending outbox row ${id}`);
    });
  }

  async pendingHeads(): Promise<OutboxRow[]> {
    return this.guard('read the outbox', () => this.s.pendingHeads.all().map(toOutboxRow));
  }

  async recordAttempt(id: number): Promise<void> {
    return this.guard('record an attempt', () => {
      this.s.recordAttempt.run(id);
    });
  }

  async claimOutbox(id: number, replica: string, now: number, leaseUntil: number): Promise<boolean> {
    return this.guard(
      'claim an outbox row',
      () => this.s.claim.run(replica, leaseUntil, id, replica, now).changes === 1,
    );
  }

  async channelPacing(channels: readonly string[]): Promise<ChannelPacing[]> {
    if (channels.length === 0) return [];
    return this.guard('read channel pacing', () =>
      (
        this.db
          .prepare(
            `SELECT channel, tokens, at, paused_until FROM channel_pacing WHERE channel IN (${channels.map(() => '?').join(', ')})`,
          )
          .all(...channels) as { channel: string; tokens: number; at: number; paused_until: number }[]
      ).map((r) => ({ channel: r.channel, tokens: r.tokens, at: r.at, pausedUntil: r.paused_until })),
    );
  }

  async saveChannelPacing(pacing: readonly ChannelPacing[]): Promise<void> {
    return this.guard('save channel pacing', () => {
      this.inTx(() => {
        for (const p of pacing) this.s.savePacing.run(p.channel, p.tokens, p.at, p.pausedUntil);
      });
    });
  }

  async recordWatchdog(at: number): Promise<void> {
    return this.guard('record a Watchdog', () => {
      this.db
        .prepare(
          'INSERT INTO deadman (id, last_seen) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_seen = MAX(COALESCE(last_seen, 0), excluded.last_seen)',
        )
        .run(at);
    });
  }

  async deadmanRecord(): Promise<DeadmanRecord> {
    return this.guard("read the dead-man's switch", () => {
      const row = this.db.prepare('SELECT last_seen, lost_since FROM deadman WHERE id = 1').get() as
        | { last_seen: number | null; lost_since: number | null }
        | undefined;
      return { lastSeen: row?.last_seen ?? null, lostSince: row?.lost_since ?? null };
    });
  }

  async setDeadmanLost(since: number | null): Promise<void> {
    return this.guard("record the dead-man's switch", () => {
      this.db
        .prepare(
          'INSERT INTO deadman (id, lost_since) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET lost_since = excluded.lost_since',
        )
        .run(since);
    });
  }

  async vipHolder(): Promise<VipHolderRecord | undefined> {
    const row = await this.vipRow('known');
    return row?.holder == null ? undefined : { holder: row.holder, at: row.at, reporter: row.reporter };
  }

  async setVipHolder(holder: string, at: number, reporter: string | null): Promise<void> {
    return this.setVipRow('known', holder, at, reporter);
  }

  async watchedVipHolder(): Promise<{ holder: string | null; at: number } | undefined> {
    const row = await this.vipRow('watched');
    return row === undefined ? undefined : { holder: row.holder, at: row.at };
  }

  async setWatchedVipHolder(holder: string | null, at: number): Promise<void> {
    return this.setVipRow('watched', holder, at, null);
  }

  private async vipRow(
    kind: 'known' | 'watched',
  ): Promise<{ holder: string | null; at: number; reporter: string | null } | undefined> {
    return this.guard('read the VIP holder', () => {
      return this.db.prepare('SELECT holder, at, reporter FROM vip_holder WHERE kind = ?').get(kind) as
        | { holder: string | null; at: number; reporter: string | null }
        | undefined;
    });
  }

  private async setVipRow(
    kind: 'known' | 'watched',
    holder: string | null,
    at: number,
    reporter: string | null,
  ): Promise<void> {
    return this.guard('record the VIP holder', () => {
      this.db
        .prepare(
          'INSERT INTO vip_holder (kind, holder, at, reporter) VALUES (?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET holder = excluded.holder, at = excluded.at, reporter = excluded.reporter',
        )
        .run(kind, holder, at, reporter);
    });
  }

  async markPosted(id: number, ts: string, now: number): Promise<void> {
    return this.guard('record a posted message', () => {
      this.inTx(() => {
        this.s.setMessageTs.run(ts, now, id);
        this.s.markSent.run(now, id);
      });
    });
  }

  async markSent(id: number, now: number): Promise<void> {
    return this.guard('record a delivered call', () => {
      this.s.markSent.run(now, id);
    });
  }

  async deferOutbox(id: number, nextAttemptAt: number, error: string): Promise<void> {
    return this.guard('defer a call', () => {
      this.s.defer.run(nextAttemptAt, error, id);
    });
  }

  async markFailed(id: number, error: string, now: number): Promise<void> {
    return this.guard('record a failed call', () => {
      this.s.markFailed.run(error, now, id);
    });
  }

  async pruneSentOutbox(cutoff: number): Promise<number> {
    return this.guard('prune the outbox', () => this.s.pruneSent.run(cutoff).changes);
  }

  async pendingCount(): Promise<number> {
    return this.guard('count pending calls', () => this.s.pendingCount.get()?.n ?? 0);
  }

  async outboxCounts(): Promise<OutboxCounts> {
    return this.guard('count outbox rows', () => {
      const counts = { pending: 0, sent: 0, failed: 0 };
      for (const row of this.s.countsByState.all()) counts[row.state] = row.n;
      return { ...counts, oldestPendingCreatedAt: this.s.oldestPending.get()?.at ?? null };
    });
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────

  // ── alerts ────────────────────────────────────────────────────────────────────────────

  async recordAlert(input: {
    incidentId: number;
    fingerprint: string;
    alertname: string;
    node: string | null;
    status: 'firing' | 'resolved';
    at: number;
  }): Promise<{ alert: IncidentAlert; created: boolean; statusChanged: boolean }> {
    return this.guard('record an alert', () =>
      this.inTx(() => {
        const before = this.alertRow(input.incidentId, input.fingerprint);
        if (before === undefined) {
          this.db
            .prepare(
              `INSERT INTO incident_alerts (incident_id, fingerprint, alertname, node, status, first_seen, last_seen, count)
               VALUES (?, ?, ?, ?, ?, ?, ?, 1)`,
            )
            .run(
              input.incidentId,
              input.fingerprint,
              input.alertname,
              input.node,
              input.status,
              input.at,
              input.at,
            );
        } else {
          this.db
            .prepare(
              'UPDATE incident_alerts SET status = ?, last_seen = ?, count = count + 1 WHERE incident_id = ? AND fingerprint = ?',
            )
            .run(input.status, input.at, input.incidentId, input.fingerprint);
        }
        const alert = this.alertRow(input.incidentId, input.fingerprint);
        if (alert === undefined) throw new OkomeError(ErrorCode.StoreFailed, 'store: alert vanished');
        return {
          alert,
          created: before === undefined,
          statusChanged: before !== undefined && before.status !== input.status,
        };
      }),
    );
  }

  async touchAlert(incidentId: number, fingerprint: string, at: number): Promise<boolean> {
    return this.guard('touch an alert', () => {
      const r = this.db
        .prepare(
          'UPDATE incident_alerts SET last_seen = MAX(last_seen, ?), count = count + 1 WHERE incident_id = ? AND fingerprint = ?',
        )
        .run(at, incidentId, fingerprint);
      return r.changes === 1;
    });
  }

  async incidentAlerts(incidentId: number): Promise<IncidentAlert[]> {
    await this.turn();
    return this.db
      .prepare<[number], AlertRow>(
        'SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY first_seen, fingerprint',
      )
      .all(incidentId)
      .map(toAlert);
  }

  async incidentOfAlert(fingerprint: string): Promise<number | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[string], { incident_id: number }>(
        `SELECT a.incident_id FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id
         WHERE a.fingerprint = ? AND i.status = 'open' ORDER BY i.opened_at DESC LIMIT 1`,
      )
      .get(fingerprint);
    return row?.incident_id;
  }

  async summaryRef(incidentId: number): Promise<string | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[number], { message_ref: string }>(
        'SELECT message_ref FROM incident_summaries WHERE incident_id = ?',
      )
      .get(incidentId);
    return row?.message_ref;
  }

  async setSummaryRef(incidentId: number, ref: string): Promise<void> {
    return this.guard('set an incident summary', () => {
      this.db
        .prepare(
          'INSERT INTO incident_summaries (incident_id, message_ref) VALUES (?, ?) ON CONFLICT(incident_id) DO UPDATE SET message_ref = excluded.message_ref',
        )
        .run(incidentId, ref);
    });
  }

  async requestAlertFollowUp(incidentId: number, diagnose: boolean, now: number): Promise<void> {
    return this.guard('request an alert follow-up', () => {
      this.db
        .prepare(
          `INSERT INTO alert_followups (incident_id, diagnose, version, requested_at, diagnose_version)
           VALUES (?, ?, 1, ?, ?)
           ON CONFLICT(incident_id) DO UPDATE SET diagnose = MAX(diagnose, excluded.diagnose),
             version = version + 1,
             diagnose_version = CASE WHEN excluded.diagnose = 1 THEN version + 1 ELSE diagnose_version END`,
        )
        .run(incidentId, diagnose ? 1 : 0, now, diagnose ? 1 : 0);
    });
  }

  async pendingAlertFollowUps(): Promise<AlertFollowUp[]> {
    await this.turn();
    return this.db
      .prepare<[], { incident_id: number; diagnose: number; version: number; requested_at: number }>(
        'SELECT * FROM alert_followups ORDER BY requested_at, incident_id',
      )
      .all()
      .map((r) => ({
        incidentId: r.incident_id,
        diagnose: r.diagnose === 1,
        version: r.version,
        requestedAt: r.requested_at,
      }));
  }

  async completeAlertFollowUp(incidentId: number, version: number, diagnosed: boolean): Promise<boolean> {
    return this.guard('complete an alert follow-up', () => {
      const r = this.db
        .prepare('DELETE FROM alert_followups WHERE incident_id = ? AND version = ?')
        .run(incidentId, version);
      if (r.changes === 0 && diagnosed)
        this.db
          .prepare('UPDATE alert_followups SET diagnose = 0 WHERE incident_id = ? AND diagnose_version <= ?')
          .run(incidentId, version);
      return r.changes === 1;
    });
  }

  async claimAlertFollowUp(
    incidentId: number,
    replica: string,
    now: number,
    leaseUntil: number,
  ): Promise<AlertFollowUp | undefined> {
    return this.guard('claim an alert follow-up', () => {
      const row = this.db
        .prepare<
          [string, number, number, string, number],
          { incident_id: number; diagnose: number; version: number; requested_at: number }
        >(
          `UPDATE alert_followups SET claimed_by = ?, lease_until = ?
           WHERE incident_id = ? AND (claimed_by IS NULL OR claimed_by = ? OR lease_until <= ?)
           RETURNING incident_id, diagnose, version, requested_at`,
        )
        .get(replica, leaseUntil, incidentId, replica, now);
      return row === undefined
        ? undefined
        : {
            incidentId: row.incident_id,
            diagnose: row.diagnose === 1,
            version: row.version,
            requestedAt: row.requested_at,
          };
    });
  }

  async releaseAlertFollowUp(incidentId: number, replica: string): Promise<void> {
    return this.guard('release an alert follow-up', () => {
      this.db
        .prepare(
          'UPDATE alert_followups SET claimed_by = NULL, lease_until = 0 WHERE incident_id = ? AND claimed_by = ?',
        )
        .run(incidentId, replica);
    });
  }

  async addToInbox(kind: string, payload: unknown, now: number): Promise<number> {
    return this.guard('add to the inbox', () => {
      const r = this.db
        .prepare('INSERT INTO inbox (kind, payload, received_at) VALUES (?, ?, ?)')
        .run(kind, JSON.stringify(payload), now);
      return Number(r.lastInsertRowid);
    });
  }

  async inbox(kind: string): Promise<InboxRow[]> {
    await this.turn();
    return this.db
      .prepare<
        [string],
        { id: number; kind: string; payload: string; received_at: number; attempts: number }
      >('SELECT id, kind, payload, received_at, attempts FROM inbox WHERE kind = ? ORDER BY id')
      .all(kind)
      .map((r) => ({
        id: r.id,
        kind: r.kind,
        payload: JSON.parse(r.payload) as unknown,
        receivedAt: r.received_at,
        attempts: r.attempts,
      }));
  }

  async removeFromInbox(id: number): Promise<void> {
    return this.guard('remove from the inbox', () => {
      this.db.prepare('DELETE FROM inbox WHERE id = ?').run(id);
    });
  }

  async inboxAttemptFailed(id: number, error: string): Promise<number> {
    return this.guard('count an inbox attempt', () => {
      this.db
        .prepare('UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE id = ?')
        .run(error.slice(0, 500), id);
      const row = this.db
        .prepare<[number], { attempts: number }>('SELECT attempts FROM inbox WHERE id = ?')
        .get(id);
      return row?.attempts ?? 0;
    });
  }

  private alertRow(incidentId: number, fingerprint: string): IncidentAlert | undefined {
    const row = this.db
      .prepare<[number, string], AlertRow>(
        'SELECT * FROM incident_alerts WHERE incident_id = ? AND fingerprint = ?',
      )
      .get(incidentId, fingerprint);
    return row === undefined ? undefined : toAlert(row);
  }

  // ── silences ──────────────────────────────────────────────────────────────────────────

  async insertSilence(
    silence: Omit<AlertSilence, 'id' | 'expiredAt' | 'expiredBy' | 'messageRef'>,
  ): Promise<AlertSilence> {
    return this.guard('record a silence', () => {
      const row = this.db
        .prepare<unknown[], SilenceRow>(
          `INSERT INTO alert_silences (incident_id, silence_id, matchers, created_by, created_by_name, starts_at, ends_at)
           VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        )
        .get(
          silence.incidentId,
          silence.silenceId,
          JSON.stringify(silence.matchers),
          silence.createdBy,
          silence.createdByName,
          silence.startsAt,
          silence.endsAt,
        );
      if (row === undefined) throw new OkomeError(ErrorCode.StoreFailed, 'store: silence not recorded');
      return toSilence(row);
    });
  }

  async setSilenceMessageRef(ids: readonly number[], ref: string): Promise<void> {
    return this.guard('set a silence message', () => {
      const update = this.db.prepare('UPDATE alert_silences SET message_ref = ? WHERE id = ?');
      for (const id of ids) update.run(ref, id);
    });
  }

  async activeSilences(incidentId: number, now: number): Promise<AlertSilence[]> {
    await this.turn();
    return this.db
      .prepare<[number, number], SilenceRow>(
        'SELECT * FROM alert_silences WHERE incident_id = ? AND expired_at IS NULL AND ends_at > ? ORDER BY id',
      )
      .all(incidentId, now)
      .map(toSilence);
  }

  async markSilenceExpired(id: number, by: string, at: number): Promise<boolean> {
    return this.guard('expire a silence', () => {
      const result = this.db
        .prepare(
          'UPDATE alert_silences SET expired_at = ?, expired_by = ? WHERE id = ? AND expired_at IS NULL',
        )
        .run(at, by, id);
      return result.changes === 1;
    });
  }

  // ── approvals and audit ───────────────────────────────────────────────────────────────

  async insertApproval(approval: Approval): Promise<void> {
    return this.guard('insert an approval', () => {
      this.db
        .prepare(
          'INSERT INTO approvals (id, incident_id, action_id, state, version, expires_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)',
        )
        .run(
          approval.id,
          approval.incidentId,
          approval.actionId,
          approval.state,
          approval.version,
          approval.expiresAt,
          JSON.stringify(approval),
        );
    });
  }

  async approvalById(id: string): Promise<Approval | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[string], { record: string }>('SELECT record FROM approvals WHERE id = ?')
      .get(id);
    return row === undefined ? undefined : (JSON.parse(row.record) as Approval);
  }

  async compareAndSetApproval(next: Approval, expectedVersion: number): Promise<boolean> {
    return this.guard('update an approval', () => {
      const r = this.db
        .prepare(
          'UPDATE approvals SET state = ?, version = ?, expires_at = ?, record = ? WHERE id = ? AND version = ?',
        )
        .run(next.state, next.version, next.expiresAt, JSON.stringify(next), next.id, expectedVersion);
      return r.changes === 1;
    });
  }

  async approvalsInStates(states: readonly Approval['state'][]): Promise<Approval[]> {
    await this.turn();
    if (states.length === 0) return [];
    const rows = this.db
      .prepare<string[], { record: string }>(
        `SELECT record FROM approvals WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY rowid`,
      )
      .all(...states);
    return rows.map((r) => JSON.parse(r.record) as Approval);
  }

  async setApprovalCardRef(id: string, ref: string): Promise<void> {
    return this.guard('set an approval card', () => {
      this.db.prepare('UPDATE approvals SET card_ref = ? WHERE id = ?').run(ref, id);
    });
  }

  async approvalCardRef(id: string): Promise<string | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[string], { card_ref: string | null }>('SELECT card_ref FROM approvals WHERE id = ?')
      .get(id);
    return row?.card_ref ?? undefined;
  }

  async lastFinishedAt(actionId: string, targets: readonly string[]): Promise<number | undefined> {
    await this.turn();
    const rows = this.db
      .prepare<[string], { record: string }>(
        "SELECT record FROM approvals WHERE action_id = ? AND state IN ('succeeded', 'failed', 'interrupted')",
      )
      .all(actionId);
    let last: number | undefined;
    for (const r of rows) {
      const a = JSON.parse(r.record) as Approval;
      if (a.finishedAt === null || !a.targets.some((t) => targets.includes(t))) continue;
      last = Math.max(last ?? 0, a.finishedAt);
    }
    return last;
  }

  async appendAudit(entry: Omit<StoredAuditEntry, 'id'>): Promise<void> {
    return this.guard('append to the audit', () => {
      this.db
        .prepare(
          `INSERT INTO audit (at, approval_id, incident_id, action_id, actor, event, verdict, code, reason, state_before, state_after, targets, commands)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          entry.at,
          entry.approvalId,
          entry.incidentId,
          entry.actionId,
          entry.actor,
          entry.event,
          entry.verdict,
          entry.code,
          entry.reason,
          entry.stateBefore,
          entry.stateAfter,
          JSON.stringify(entry.targets),
          JSON.stringify(entry.commands),
        );
    });
  }

  async auditSince(at: number): Promise<StoredAuditEntry[]> {
    await this.turn();
    const rows = this.db
      .prepare<[number], Record<string, unknown>>('SELECT * FROM audit WHERE at >= ? ORDER BY id')
      .all(at);
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      approvalId: (r.approval_id as string | null) ?? null,
      incidentId: r.incident_id === null ? null : Number(r.incident_id),
      actionId: (r.action_id as string | null) ?? null,
      actor: String(r.actor),
      event: String(r.event),
      verdict: String(r.verdict),
      code: String(r.code),
      reason: String(r.reason),
      stateBefore: (r.state_before as string | null) ?? null,
      stateAfter: (r.state_after as string | null) ?? null,
      targets: JSON.parse(String(r.targets)) as string[],
      commands: JSON.parse(String(r.commands)) as string[],
    }));
  }

  // ── coverage ────────────────────────────────────────────────────────────────────────

  async incidentCoverage(): Promise<IncidentCoverageRow[]> {
    return this.guard('read the runbook coverage', () =>
      this.db.prepare<[], IncidentCoverageSqlRow>(INCIDENT_COVERAGE_SQL.sqlite).all().map(toIncidentCoverage),
    );
  }

  // ── drills ────────────────────────────────────────────────────────────────────────────

  async insertDrill(drill: Omit<Drill, 'id'>): Promise<Drill> {
    return this.guard('insert a drill', () => {
      const r = this.db
        .prepare(
          `INSERT INTO drills (${DRILL_COLUMNS.join(', ')}) VALUES (${DRILL_COLUMNS.map(() => '?').join(', ')})`,
        )
        .run(...drillColumns(drill));
      return { ...drill, id: Number(r.lastInsertRowid) };
    });
  }

  async drillById(id: number): Promise<Drill | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[number], { id: number; record: string }>('SELECT id, record FROM drills WHERE id = ?')
      .get(id);
    return row === undefined ? undefined : toDrill(row);
  }

  async drillByApproval(approvalId: string): Promise<Drill | undefined> {
    await this.turn();
    const row = this.db
      .prepare<[string], { id: number; record: string }>(
        'SELECT id, record FROM drills WHERE approval_id = ?',
      )
      .get(approvalId);
    return row === undefined ? undefined : toDrill(row);
  }

  async compareAndSetDrill(next: Drill, expectedVersion: number): Promise<boolean> {
    return this.guard('update a drill', () => {
      const [, , phase, active, , version, , startedAt, finishedAt, outcome, record] = drillColumns(next);
      // One drill runs at a time: checked here so that the loser gets false, not a failed write.
      const r = this.db
        .prepare(
          `UPDATE drills SET phase = ?, active = ?, version = ?, started_at = ?, finished_at = ?, outcome = ?, record = ?
           WHERE id = ? AND version = ?
             AND (? IS NULL OR NOT EXISTS (SELECT 1 FROM drills WHERE active = 1 AND id <> ?))`,
        )
        .run(
          phase,
          active,
          version,
          startedAt,
          finishedAt,
          outcome,
          record,
          next.id,
          expectedVersion,
          active,
          next.id,
        );
      return r.changes === 1;
    });
  }

  async unfinishedDrills(): Promise<Drill[]> {
    await this.turn();
    return this.db
      .prepare<[], { id: number; record: string }>(
        "SELECT id, record FROM drills WHERE phase <> 'finished' ORDER BY id",
      )
      .all()
      .map(toDrill);
  }

  async drills(limit: number): Promise<Drill[]> {
    await this.turn();
    return this.db
      .prepare<[number], { id: number; record: string }>(
        'SELECT id, record FROM drills ORDER BY id DESC LIMIT ?',
      )
      .all(limit)
      .map(toDrill);
  }

  async lastDrills(): Promise<LastDrill[]> {
    await this.turn();
    const rows = this.db
      .prepare<
        string[],
        { incident_number: string; id: number; kind: string; outcome: string; finished_at: number }
      >(
        `SELECT incident_number, id, kind, outcome, finished_at FROM drills
         WHERE finished_at IS NOT NULL AND outcome IN (${RAN_OUTCOMES.map(() => '?').join(', ')})
         ORDER BY finished_at, id`,
      )
      .all(...RAN_OUTCOMES);
    return lastPerIncident(rows.map(toLastDrill));
  }

  /** Runs one method's statements once no other context's transaction is open. */
  private async guard<T>(what: string, fn: () => T): Promise<T> {
    await this.turn();
    return this.guardSync(what, fn);
  }

  private guardSync<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof OkomeError) throw error;
      throw new OkomeError(ErrorCode.StoreFailed, `store: cannot ${what}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  private expectOne(changes: number, what: string): void {
    if (changes !== 1) throw new OkomeError(ErrorCode.StoreFailed, `store: ${what} not found`);
  }
}

function prepareStatements(db: Database.Database) {
  return {
    openIncidentByKey: db.prepare<[string], IncidentRow>(
      "SELECT * FROM incidents WHERE key = ? AND status = 'open'",
    ),
    latestIncidentByKey: db.prepare<[string], IncidentRow>(
      "SELECT * FROM incidents WHERE key = ? ORDER BY status = 'open' DESC, opened_at DESC, id DESC LIMIT 1",
    ),
    incidentById: db.prepare<[number], IncidentRow>('SELECT * FROM incidents WHERE id = ?'),
    latestIncidentWithNumber: db.prepare<[string], IncidentRow>(
      "SELECT * FROM incidents WHERE number = ? ORDER BY status = 'open' DESC, opened_at DESC, id DESC LIMIT 1",
    ),
    openIncidents: db.prepare<[], IncidentRow>(
      "SELECT * FROM incidents WHERE status = 'open' ORDER BY opened_at, id",
    ),
    insertIncident: db.prepare<
      [{ key: string; number: string; title: string; channel: string; requester: string; opened_at: number }]
    >(
      `INSERT INTO incidents (key, number, title, status, channel, requester, opened_at)
       VALUES (@key, @number, @title, 'open', @channel, @requester, @opened_at)`,
    ),
    resolveIncident: db.prepare<[number, string, number]>(
      "UPDATE incidents SET status = 'resolved', resolved_at = ?, resolved_reason = ? WHERE id = ? AND status = 'open'",
    ),
    reopenIncident: db.prepare<[number]>(
      `UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_reason = NULL,
         reopened_count = reopened_count + 1 WHERE id = ? AND status = 'resolved'`,
    ),
    acknowledgeIncident: db.prepare<[string, number, number]>(
      "UPDATE incidents SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ? AND status = 'open' AND acknowledged_by IS NULL",
    ),
    saveReport: db.prepare<[string | null, number]>('UPDATE incidents SET last_report = ? WHERE id = ?'),
    setRootRef: db.prepare<[string, number]>('UPDATE incidents SET root_ref = ? WHERE id = ?'),
    appendTimeline: db.prepare<[number, number, TimelineKind, string, string | null]>(
      'INSERT INTO timeline (incident_id, at, kind, text, data) VALUES (?, ?, ?, ?, ?)',
    ),
    timeline: db.prepare<[number], TimelineRow>(
      'SELECT * FROM timeline WHERE incident_id = ? ORDER BY at, id',
    ),
    markSeen: db.prepare<[string, number]>('INSERT OR IGNORE INTO seen_events (key, at) VALUES (?, ?)'),
    pruneSeen: db.prepare<[number]>('DELETE FROM seen_events WHERE at < ?'),
    insertMessage: db.prepare<[string, string, string | null, number]>(
      'INSERT INTO messages (ref, channel, thread_ref, created_at) VALUES (?, ?, ?, ?)',
    ),
    message: db.prepare<[string], MessageRow>(
      `SELECT m.ref, m.channel, m.ts, m.thread_ref,
              (SELECT o.state FROM outbox o WHERE o.message_ref = m.ref AND o.op = 'post'
               ORDER BY o.seq DESC LIMIT 1) AS post_state
       FROM messages m WHERE m.ref = ?`,
    ),
    setMessageTs: db.prepare<[string, number, number]>(
      'UPDATE messages SET ts = ?, posted_at = ? WHERE ref = (SELECT message_ref FROM outbox WHERE id = ?)',
    ),
    insertOutbox: db.prepare<
      [
        {
          channel: string;
          queue_key: string;
          op: OutboxOp;
          message_ref: string | null;
          thread_ref: string | null;
          user: string | null;
          payload: string;
          created_at: number;
        },
      ]
    >(
      `INSERT INTO outbox (seq, channel, queue_key, op, message_ref, thread_ref, user, payload, created_at)
       VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox),
               @channel, @queue_key, @op, @message_ref, @thread_ref, @user, @payload, @created_at)`,
    ),
    pendingForMessage: db.prepare<[string], OutboxDbRow>(
      "SELECT * FROM outbox WHERE message_ref = ? AND state = 'pending' ORDER BY seq",
    ),
    replacePayload: db.prepare<[string, number]>(
      "UPDATE outbox SET payload = ? WHERE id = ? AND state = 'pending'",
    ),
    pendingHeads: db.prepare<[], OutboxDbRow>(
      `SELECT o.* FROM outbox o
       JOIN (SELECT MIN(seq) AS seq FROM outbox WHERE state = 'pending' GROUP BY queue_key) AS head
         ON o.seq = head.seq
       ORDER BY o.seq`,
    ),
    recordAttempt: db.prepare<[number]>('UPDATE outbox SET attempts = attempts + 1 WHERE id = ?'),
    claim: db.prepare<[string, number, number, string, number]>(
      `UPDATE outbox SET attempts = attempts + 1, claimed_by = ?, lease_until = ?
       WHERE id = ? AND state = 'pending' AND (claimed_by IS NULL OR claimed_by = ? OR lease_until <= ?)`,
    ),
    savePacing: db.prepare<[string, number, number, number]>(
      `INSERT INTO channel_pacing (channel, tokens, at, paused_until) VALUES (?, ?, ?, ?)
       ON CONFLICT (channel) DO UPDATE SET tokens = excluded.tokens, at = excluded.at, paused_until = excluded.paused_until`,
    ),
    markSent: db.prepare<[number, number]>(
      "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL, claimed_by = NULL, lease_until = 0 WHERE id = ? AND state = 'pending'",
    ),
    defer: db.prepare<[number, string, number]>(
      "UPDATE outbox SET next_attempt_at = ?, last_error = ?, claimed_by = NULL, lease_until = 0 WHERE id = ? AND state = 'pending'",
    ),
    markFailed: db.prepare<[string, number, number]>(
      "UPDATE outbox SET state = 'failed', last_error = ?, sent_at = ?, claimed_by = NULL, lease_until = 0 WHERE id = ? AND state = 'pending'",
    ),
    pruneSent: db.prepare<[number]>("DELETE FROM outbox WHERE state = 'sent' AND sent_at < ?"),
    pendingCount: db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'"),
    countsByState: db.prepare<[], { state: OutboxState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM outbox GROUP BY state',
    ),
    oldestPending: db.prepare<[], { at: number | null }>(
      "SELECT MIN(created_at) AS at FROM outbox WHERE state = 'pending'",
    ),
  };
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_UNIQUE';
}
