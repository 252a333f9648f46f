import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { Approval } from '../domain/approval.js';
import type { Drill, LastDrill } from '../domain/drill.js';
import { ErrorCode, OkomeError } from '../errors.js';
import {
  INCIDENT_COVERAGE_SQL,
  type IncidentCoverageSqlRow,
  toIncidentCoverage,
} from './coverage-queries.js';
import { MIGRATIONS, type Migration } from './migrations.js';
import { DB_NOW_MS, SINGLETONS_LEASE } from './postgres-leader.js';
import { ADVISORY_CLASS, AdvisoryLock, migratePostgres, postgresSchemaVersion } from './postgres-migrate.js';
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

export interface PostgresStoreOptions {
  /** postgres://user@host:port/db; the password may come from it or from PGPASSWORD. */
  readonly url: string;
  /** Connections in the pool (default 10): each open transaction holds one. */
  readonly poolSize?: number;
  /** Read-only: for `okome audit` beside a serving bot; the schema must be at this okome's version. */
  readonly readOnly?: boolean;
  /** How long connecting may take (default 10 000 ms): `okome doctor` gives it its own bound. */
  readonly connectTimeoutMs?: number;
  /** Tests only: another schema list. */
  readonly migrations?: readonly Migration[];
  /** The backend holding this process's serve lock: a migration is refused while others hold it. */
  readonly ownServeBackend?: number;
  readonly now?: () => number;
}

/** The open transaction of an async context: its client, and whether a statement failed in it. */
interface TxContext {
  readonly client: pg.PoolClient;
  savepoints: number;
  /** PostgreSQL refuses every statement after a failed one and turns COMMIT into ROLLBACK. */
  aborted: boolean;
}

// BIGINT (epoch ms, ids, COUNT) as a JS number: every value okome stores is below 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
};

/** The URL without its password, for messages. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

/** Connects, checks and migrates (under an advisory lock); throws OKOME_STORE_* errors that say how to fix. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const where = describeDatabaseUrl(options.url);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    types,
    application_name: 'okome',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    ...(options.readOnly === true ? { options: '-c default_transaction_read_only=on' } : {}),
  });
  // An idle client whose server went away: the pool drops it; the next query reports it.
  pool.on('error', () => {});
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    await pool.end().catch(() => {});
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot connect to PostgreSQL at ${where}: ${messageOf(error)}. Check OKOME_DATABASE_URL (and ` +
        'PGPASSWORD), and that the server accepts this user from this host.',
      { cause: error, userSafe: true },
    );
  }
  try {
    const migrations = options.migrations ?? MIGRATIONS;
    if (options.readOnly === true) {
      const version = await postgresSchemaVersion(client);
      if (version !== migrations.length) {
        throw new OkomeError(
          version > migrations.length ? ErrorCode.StoreSchemaTooNew : ErrorCode.StoreFailed,
          `the PostgreSQL database ${where} is at schema version ${version}; this okome-bot reads version ` +
            `${migrations.length}. ` +
            (version > migrations.length
              ? 'A newer okome-bot wrote it: read it with that version.'
              : 'Start `okome serve` of this version once to migrate it.'),
          { userSafe: true },
        );
      }
    } else {
      await migratePostgres(client, {
        migrations,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.ownServeBackend === undefined ? {} : { ownServeBackend: options.ownServeBackend }),
      });
    }
    client.release();
    return new PostgresStore(pool);
  } catch (error) {
    client.release();
    await pool.end().catch(() => {});
    if (error instanceof OkomeError) throw error;
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot prepare the PostgreSQL database ${where}: ${messageOf(error)}`,
      { cause: error, userSafe: true },
    );
  }
}

/**
 * The store on PostgreSQL. Statements outside a transaction run on any pooled connection.
 * `atomically` takes a connection of its own for the transaction, found again by async context
 * (so store calls inside `fn` join it), and the store's write lock (a transaction-level advisory
 * lock): write transactions go one at a time across every process on the database, as SQLite's
 * BEGIN IMMEDIATE does, so a read-then-write inside one sees no other's writes appear meanwhile.
 */
export class PostgresStore implements Store {
  private readonly context = new AsyncLocalStorage<TxContext>();
  /** The leader term a singleton's store calls run under (see fenced). */
  private readonly fence = new AsyncLocalStorage<number>();
  private readonly open = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly pool: pg.Pool) {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Open transactions commit first (they hold their own connections).
    while (this.open.size > 0) await Promise.allSettled([...this.open]);
    await this.pool.end();
  }

  fenced<T>(token: number, fn: () => Promise<T>): Promise<T> {
    return this.fence.run(token, fn);
  }

  async atomically<T>(fn: () => Promise<T>): Promise<T> {
    const tx = this.context.getStore();
    if (tx !== undefined) return this.savepoint(tx, fn);
    const run = this.transaction(fn);
    this.open.add(run);
    try {
      return await run;
    } finally {
      this.open.delete(run);
    }
  }

  private async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new OkomeError(ErrorCode.StoreFailed, 'store: closed');
    const client = await this.guardRaw('begin a transaction', () => this.pool.connect());
    let broken: Error | undefined;
    // The pool listens for errors only on idle clients: a server restart while this one is
    // checked out (between statements) would otherwise be an uncaught 'error' that ends the bot.
    // The next statement then fails and the connection is destroyed on release.
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    try {
      await this.guardRaw('begin a transaction', async () => {
        try {
          await client.query('BEGIN');
          await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_CLASS, AdvisoryLock.write]);
        } catch (error) {
          // Perhaps inside an open transaction: this connection is destroyed, never handed on.
          broken = error instanceof Error ? error : new Error(String(error));
          throw error;
        }
      });
      const tx: TxContext = { client, savepoints: 0, aborted: false };
      try {
        const term = this.fence.getStore();
        if (term !== undefined) await this.checkTerm(client, term);
        const result = await this.context.run(tx, fn);
        if (tx.aborted) {
          throw new OkomeError(
            ErrorCode.StoreFailed,
            'store: a statement failed inside the transaction and was caught; nothing of it was committed',
          );
        }
        await this.guardRaw('commit a transaction', () => client.query('COMMIT'));
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw error;
      }
    } finally {
      client.off('error', onError);
      // A connection that failed mid-transaction is destroyed, not handed to the next caller.
      client.release(broken);
    }
  }

  /**
   * A singleton's transaction commits only in its leader's term: the lease row is locked until
   * the commit, so a new leader cannot take over between this check and the commit.
   */
  private async checkTerm(client: pg.PoolClient, term: number): Promise<void> {
    const held = await this.guardRaw('check the leader lease', () =>
      client.query(
        `SELECT 1 FROM leader_lease WHERE name = $1 AND token = $2 AND lease_until > ${DB_NOW_MS} FOR SHARE`,
        [SINGLETONS_LEASE, term],
      ),
    );
    if (held.rowCount !== 1) {
      throw new OkomeError(
        ErrorCode.NotLeader,
        `store: leader term ${term} has ended; another replica runs the singletons now`,
      );
    }
  }

  private async savepoint<T>(tx: TxContext, fn: () => Promise<T>): Promise<T> {
    const name = `okome_${++tx.savepoints}`;
    await this.q('open a savepoint', `SAVEPOINT ${name}`);
    try {
      const result = await fn();
      await this.q('release a savepoint', `RELEASE ${name}`);
      return result;
    } catch (error) {
      await tx.client.query(`ROLLBACK TO ${name}`);
      tx.aborted = false;
      await tx.client.query(`RELEASE ${name}`);
      throw error;
    }
  }

  /** One statement: in the context's transaction if there is one, else on any pooled connection. */
  private async q<R extends pg.QueryResultRow = Record<string, unknown>>(
    what: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    const tx = this.context.getStore();
    // A singleton's statement outside a transaction gets one of its own, for the term check.
    if (tx === undefined && this.fence.getStore() !== undefined)
      return this.atomically(() => this.q<R>(what, sql, params));
    try {
      return await (tx?.client ?? this.pool).query<R>(sql, params as unknown[]);
    } catch (error) {
      if (tx !== undefined) tx.aborted = true;
      throw new OkomeError(ErrorCode.StoreFailed, `store: cannot ${what}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  private async guardRaw<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof OkomeError) throw error;
      throw new OkomeError(ErrorCode.StoreFailed, `store: cannot ${what}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  private async rows<R extends pg.QueryResultRow>(
    what: string,
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<R[]> {
    return (await this.q<R>(what, sql, params)).rows;
  }

  private async changes(what: string, sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.q(what, sql, params)).rowCount ?? 0;
  }

  private expectOne(changes: number, what: string): void {
    if (changes !== 1) throw new OkomeError(ErrorCode.StoreFailed, `store: ${what} not found`);
  }

  // ── incidents ───────────────────────────────────────────────────────────────────────

  async openOrReuseIncident(
    input: OpenIncidentInput,
    reopen: (latest: Incident) => boolean = () => false,
  ): Promise<{ incident: Incident; how: OpenHow }> {
    try {
      return await this.atomically(() => this.openOrReuseLocked(input, reopen));
    } catch (error) {
      // The unique index is the last word if a writer somehow slipped past the write lock.
      if (isUniqueViolation(error)) {
        const open = await this.rows<IncidentRow>(
          'open or reuse an incident',
          "SELECT * FROM incidents WHERE key = $1 AND status = 'open'",
          [input.key],
        );
        if (open[0] !== undefined) return { incident: toIncident(open[0]), how: 'reused' };
      }
      throw error;
    }
  }

  private async openOrReuseLocked(
    input: OpenIncidentInput,
    reopen: (latest: Incident) => boolean,
  ): Promise<{ incident: Incident; how: OpenHow }> {
    const what = 'open or reuse an incident';
    const latest = (await this.rows<IncidentRow>(what, LATEST_INCIDENT_BY_KEY, [input.key]))[0];
    if (latest?.status === 'open') return { incident: toIncident(latest), how: 'reused' };
    if (latest !== undefined && reopen(toIncident(latest))) {
      const reopened = await this.rows<IncidentRow>(
        what,
        `UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_reason = NULL,
           reopened_count = reopened_count + 1 WHERE id = $1 AND status = 'resolved' RETURNING *`,
        [latest.id],
      );
      if (reopened[0] !== undefined) return { incident: toIncident(reopened[0]), how: 'reopened' };
    }
    const created = await this.rows<IncidentRow>(
      what,
      `INSERT INTO incidents (key, number, title, status, channel, requester, opened_at)
       VALUES ($1, $2, $3, 'open', $4, $5, $6) RETURNING *`,
      [input.key, input.number, input.title, input.channel, input.requester, input.now],
    );
    const row = created[0];
    if (row === undefined) throw new OkomeError(ErrorCode.StoreFailed, 'store: incident not inserted');
    return { incident: toIncident(row), how: 'created' };
  }

  async acknowledgeIncident(id: number, user: string, now: number): Promise<boolean> {
    const n = await this.changes(
      'acknowledge an incident',
      "UPDATE incidents SET acknowledged_by = $1, acknowledged_at = $2 WHERE id = $3 AND status = 'open' AND acknowledged_by IS NULL",
      [user, now, id],
    );
    return n === 1;
  }

  async resolveIncident(id: number, now: number, reason: string): Promise<boolean> {
    const n = await this.changes(
      'resolve an incident',
      "UPDATE incidents SET status = 'resolved', resolved_at = $1, resolved_reason = $2 WHERE id = $3 AND status = 'open'",
      [now, reason, id],
    );
    return n === 1;
  }

  async openIncidents(): Promise<Incident[]> {
    const rows = await this.rows<IncidentRow>(
      'list open incidents',
      "SELECT * FROM incidents WHERE status = 'open' ORDER BY opened_at, id",
    );
    return rows.map(toIncident);
  }

  async incidentByKey(key: string): Promise<Incident | undefined> {
    const row = (await this.rows<IncidentRow>('find an incident', LATEST_INCIDENT_BY_KEY, [key]))[0];
    return row === undefined ? undefined : toIncident(row);
  }

  async latestIncidentWithNumber(number: string): Promise<Incident | undefined> {
    const row = (
      await this.rows<IncidentRow>(
        'find an incident',
        "SELECT * FROM incidents WHERE number = $1 ORDER BY status = 'open' DESC, opened_at DESC, id DESC LIMIT 1",
        [number],
      )
    )[0];
    return row === undefined ? undefined : toIncident(row);
  }

  async incidentById(id: number): Promise<Incident | undefined> {
    const row = (
      await this.rows<IncidentRow>('find an incident', 'SELECT * FROM incidents WHERE id = $1', [id])
    )[0];
    return row === undefined ? undefined : toIncident(row);
  }

  async saveReport(id: number, report: unknown): Promise<void> {
    const n = await this.changes('save a report', 'UPDATE incidents SET last_report = $1 WHERE id = $2', [
      toJson(report),
      id,
    ]);
    this.expectOne(n, `incident ${id}`);
  }

  async setIncidentRootRef(id: number, rootRef: string): Promise<void> {
    const n = await this.changes(
      'set an incident root message',
      'UPDATE incidents SET root_ref = $1 WHERE id = $2',
      [rootRef, id],
    );
    this.expectOne(n, `incident ${id}`);
  }

  // ── timeline ────────────────────────────────────────────────────────────────────────

  async appendTimeline(entry: {
    incidentId: number;
    at: number;
    kind: TimelineKind;
    text: string;
    data?: unknown;
  }): Promise<TimelineEntry> {
    const data = entry.data === undefined ? null : toJson(entry.data);
    const [row] = await this.rows<{ id: number }>(
      'append to the timeline',
      'INSERT INTO timeline (incident_id, at, kind, text, data) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [entry.incidentId, entry.at, entry.kind, entry.text, data],
    );
    return {
      id: row?.id ?? 0,
      incidentId: entry.incidentId,
      at: entry.at,
      kind: entry.kind,
      text: entry.text,
      data: data === null ? null : parseJson(data),
    };
  }

  async timeline(incidentId: number): Promise<TimelineEntry[]> {
    const rows = await this.rows<TimelineRow>(
      'read the timeline',
      'SELECT * FROM timeline WHERE incident_id = $1 ORDER BY at, id',
      [incidentId],
    );
    return rows.map((row) => ({
      id: row.id,
      incidentId: row.incident_id,
      at: row.at,
      kind: row.kind,
      text: row.text,
      data: row.data === null ? null : parseJson(row.data),
    }));
  }

  // ── seen events ─────────────────────────────────────────────────────────────────────

  async markSeen(key: string, now: number): Promise<boolean> {
    const n = await this.changes(
      'record a seen event',
      'INSERT INTO seen_events (key, at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [key, now],
    );
    return n === 1;
  }

  async pruneSeen(cutoff: number): Promise<number> {
    return this.changes('prune seen events', 'DELETE FROM seen_events WHERE at < $1', [cutoff]);
  }

  // ── messages and outbox ─────────────────────────────────────────────────────────────

  async createMessage(input: { channel: string; threadRef: string | null; now: number }): Promise<string> {
    const ref = newMessageRef(input.now);
    await this.q(
      'create a message ref',
      'INSERT INTO messages (ref, channel, thread_ref, created_at) VALUES ($1, $2, $3, $4)',
      [ref, input.channel, input.threadRef, input.now],
    );
    return ref;
  }

  async message(ref: string): Promise<MessageRecord | undefined> {
    const row = (
      await this.rows<MessageRow>(
        'read a message',
        `SELECT m.ref, m.channel, m.ts, m.thread_ref,
                (SELECT o.state FROM outbox o WHERE o.message_ref = m.ref AND o.op = 'post'
                 ORDER BY o.seq DESC LIMIT 1) AS post_state
         FROM messages m WHERE m.ref = $1`,
        [ref],
      )
    )[0];
    if (row === undefined) return undefined;
    return {
      ref: row.ref,
      channel: row.channel,
      ts: row.ts,
      threadRef: row.thread_ref,
      postState: row.post_state,
    };
  }

  async insertOutbox(row: NewOutboxRow): Promise<number> {
    // Under the write lock: seq order is then commit order, so a deliverer never sees a later
    // row of a queue before an earlier one that was still uncommitted.
    return this.atomically(async () => {
      const [inserted] = await this.rows<{ id: number }>(
        'enqueue a Slack call',
        `INSERT INTO outbox (channel, queue_key, op, message_ref, thread_ref, "user", payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
        [row.channel, row.queueKey, row.op, row.messageRef, row.threadRef, row.user, row.payload, row.now],
      );
      return inserted?.id ?? 0;
    });
  }

  async pendingRowsForMessage(messageRef: string): Promise<OutboxRow[]> {
    const rows = await this.rows<OutboxDbRow>(
      'read pending calls',
      "SELECT * FROM outbox WHERE message_ref = $1 AND state = 'pending' ORDER BY seq",
      [messageRef],
    );
    return rows.map(toOutboxRow);
  }

  async replacePayload(id: number, payload: string): Promise<void> {
    const n = await this.changes(
      'coalesce a pending call',
      "UPDATE outbox SET payload = $1 WHERE id = $2 AND state = 'pending'",
      [payload, id],
    );
    this.expectOne(n, `pending outbox row ${id}`);
  }

  async pendingHeads(): Promise<OutboxRow[]> {
    const rows = await this.rows<OutboxDbRow>(
      'read the outbox',
      `SELECT o.* FROM outbox o
       JOIN (SELECT MIN(seq) AS seq FROM outbox WHERE state = 'pending' GROUP BY queue_key) AS head
         ON o.seq = head.seq
       ORDER BY o.seq`,
    );
    return rows.map(toOutboxRow);
  }

  async recordAttempt(id: number): Promise<void> {
    await this.q('record an attempt', 'UPDATE outbox SET attempts = attempts + 1 WHERE id = $1', [id]);
  }

  async claimOutbox(id: number, replica: string, now: number, leaseUntil: number): Promise<boolean> {
    // SKIP LOCKED: a row another replica is claiming right now is theirs; never wait for it.
    const n = await this.changes(
      'claim an outbox row',
      `UPDATE outbox SET attempts = attempts + 1, claimed_by = $2, lease_until = $4
       WHERE id = (SELECT id FROM outbox WHERE id = $1 AND state = 'pending'
                     AND (claimed_by IS NULL OR claimed_by = $2 OR lease_until <= $3)
                   FOR UPDATE SKIP LOCKED)`,
      [id, replica, now, leaseUntil],
    );
    return n === 1;
  }

  async channelPacing(channels: readonly string[]): Promise<ChannelPacing[]> {
    if (channels.length === 0) return [];
    const rows = await this.rows<{ channel: string; tokens: number; at: number; paused_until: number }>(
      'read channel pacing',
      'SELECT channel, tokens, at, paused_until FROM channel_pacing WHERE channel = ANY($1)',
      [[...channels]],
    );
    return rows.map((r) => ({ channel: r.channel, tokens: r.tokens, at: r.at, pausedUntil: r.paused_until }));
  }

  async saveChannelPacing(pacing: readonly ChannelPacing[]): Promise<void> {
    if (pacing.length === 0) return;
    await this.q(
      'save channel pacing',
      `INSERT INTO channel_pacing (channel, tokens, at, paused_until)
       SELECT * FROM unnest($1::text[], $2::float8[], $3::bigint[], $4::bigint[])
       ON CONFLICT (channel) DO UPDATE SET tokens = excluded.tokens, at = excluded.at, paused_until = excluded.paused_until`,
      [
        pacing.map((p) => p.channel),
        pacing.map((p) => p.tokens),
        pacing.map((p) => p.at),
        pacing.map((p) => p.pausedUntil),
      ],
    );
  }

  async markPosted(id: number, ts: string, now: number): Promise<void> {
    // One statement, so the ts and the sent mark commit together.
    await this.q(
      'record a posted message',
      `WITH sent AS (
         UPDATE outbox SET state = 'sent', sent_at = $2, last_error = NULL, claimed_by = NULL, lease_until = 0
         WHERE id = $3 AND state = 'pending' RETURNING id
       )
       UPDATE messages SET ts = $1, posted_at = $2 WHERE ref = (SELECT message_ref FROM outbox WHERE id = $3)`,
      [ts, now, id],
    );
  }

  async markSent(id: number, now: number): Promise<void> {
    await this.q(
      'record a delivered call',
      "UPDATE outbox SET state = 'sent', sent_at = $1, last_error = NULL, claimed_by = NULL, lease_until = 0 WHERE id = $2 AND state = 'pending'",
      [now, id],
    );
  }

  async deferOutbox(id: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.q(
      'defer a call',
      "UPDATE outbox SET next_attempt_at = $1, last_error = $2, claimed_by = NULL, lease_until = 0 WHERE id = $3 AND state = 'pending'",
      [nextAttemptAt, error, id],
    );
  }

  async markFailed(id: number, error: string, now: number): Promise<void> {
    await this.q(
      'record a failed call',
      "UPDATE outbox SET state = 'failed', last_error = $1, sent_at = $2, claimed_by = NULL, lease_until = 0 WHERE id = $3 AND state = 'pending'",
      [error, now, id],
    );
  }

  async pruneSentOutbox(cutoff: number): Promise<number> {
    return this.changes('prune the outbox', "DELETE FROM outbox WHERE state = 'sent' AND sent_at < $1", [
      cutoff,
    ]);
  }

  async pendingCount(): Promise<number> {
    const [row] = await this.rows<{ n: number }>(
      'count pending calls',
      "SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'",
    );
    return row?.n ?? 0;
  }

  async outboxCounts(): Promise<OutboxCounts> {
    const rows = await this.rows<{ state: OutboxState; n: number; oldest: number | null }>(
      'count outbox rows',
      `SELECT state, COUNT(*) AS n, MIN(created_at) FILTER (WHERE state = 'pending') AS oldest
       FROM outbox GROUP BY state`,
    );
    const counts = { pending: 0, sent: 0, failed: 0 };
    let oldest: number | null = null;
    for (const row of rows) {
      counts[row.state] = row.n;
      if (row.oldest !== null) oldest = row.oldest;
    }
    return { ...counts, oldestPendingCreatedAt: oldest };
  }

  // ── alerts ────────────────────────────────────────────────────────────────────────────

  async recordAlert(input: {
    incidentId: number;
    fingerprint: string;
    alertname: string;
    node: string | null;
    status: 'firing' | 'resolved';
    at: number;
  }): Promise<{ alert: IncidentAlert; created: boolean; statusChanged: boolean }> {
    return this.atomically(async () => {
      const what = 'record an alert';
      const [before] = await this.rows<AlertRow>(
        what,
        'SELECT * FROM incident_alerts WHERE incident_id = $1 AND fingerprint = $2',
        [input.incidentId, input.fingerprint],
      );
      const [after] =
        before === undefined
          ? await this.rows<AlertRow>(
              what,
              `INSERT INTO incident_alerts (incident_id, fingerprint, alertname, node, status, first_seen, last_seen, count)
               VALUES ($1, $2, $3, $4, $5, $6, $6, 1) RETURNING *`,
              [input.incidentId, input.fingerprint, input.alertname, input.node, input.status, input.at],
            )
          : await this.rows<AlertRow>(
              what,
              `UPDATE incident_alerts SET status = $1, last_seen = $2, count = count + 1
               WHERE incident_id = $3 AND fingerprint = $4 RETURNING *`,
              [input.status, input.at, input.incidentId, input.fingerprint],
            );
      if (after === undefined) throw new OkomeError(ErrorCode.StoreFailed, 'store: alert vanished');
      return {
        alert: toAlert(after),
        created: before === undefined,
        statusChanged: before !== undefined && before.status !== input.status,
      };
    });
  }

  async touchAlert(incidentId: number, fingerprint: string, at: number): Promise<boolean> {
    const n = await this.changes(
      'touch an alert',
      'UPDATE incident_alerts SET last_seen = GREATEST(last_seen, $1), count = count + 1 WHERE incident_id = $2 AND fingerprint = $3',
      [at, incidentId, fingerprint],
    );
    return n === 1;
  }

  async incidentAlerts(incidentId: number): Promise<IncidentAlert[]> {
    const rows = await this.rows<AlertRow>(
      'read alerts',
      'SELECT * FROM incident_alerts WHERE incident_id = $1 ORDER BY first_seen, fingerprint',
      [incidentId],
    );
    return rows.map(toAlert);
  }

  async incidentOfAlert(fingerprint: string): Promise<number | undefined> {
    const [row] = await this.rows<{ incident_id: number }>(
      'find an alert',
      `SELECT a.incident_id FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id
       WHERE a.fingerprint = $1 AND i.status = 'open' ORDER BY i.opened_at DESC LIMIT 1`,
      [fingerprint],
    );
    return row?.incident_id;
  }

  async summaryRef(incidentId: number): Promise<string | undefined> {
    const [row] = await this.rows<{ message_ref: string }>(
      'read an incident summary',
      'SELECT message_ref FROM incident_summaries WHERE incident_id = $1',
      [incidentId],
    );
    return row?.message_ref;
  }

  async setSummaryRef(incidentId: number, ref: string): Promise<void> {
    await this.q(
      'set an incident summary',
      'INSERT INTO incident_summaries (incident_id, message_ref) VALUES ($1, $2) ON CONFLICT (incident_id) DO UPDATE SET message_ref = excluded.message_ref',
      [incidentId, ref],
    );
  }

  async requestAlertFollowUp(incidentId: number, diagnose: boolean, now: number): Promise<void> {
    await this.q(
      'request an alert follow-up',
      `INSERT INTO alert_followups AS f (incident_id, diagnose, version, requested_at, diagnose_version)
       VALUES ($1, $2, 1, $3, $2)
       ON CONFLICT (incident_id) DO UPDATE SET diagnose = GREATEST(f.diagnose, excluded.diagnose),
         version = f.version + 1,
         diagnose_version = CASE WHEN excluded.diagnose = 1 THEN f.version + 1 ELSE f.diagnose_version END`,
      [incidentId, diagnose ? 1 : 0, now],
    );
  }

  async pendingAlertFollowUps(): Promise<AlertFollowUp[]> {
    const rows = await this.rows<{
      incident_id: number;
      diagnose: number;
      version: number;
      requested_at: number;
    }>('read alert follow-ups', 'SELECT * FROM alert_followups ORDER BY requested_at, incident_id');
    return rows.map((r) => ({
      incidentId: r.incident_id,
      diagnose: r.diagnose === 1,
      version: r.version,
      requestedAt: r.requested_at,
    }));
  }

  async completeAlertFollowUp(incidentId: number, version: number, diagnosed: boolean): Promise<boolean> {
    return this.atomically(async () => {
      const n = await this.changes(
        'complete an alert follow-up',
        'DELETE FROM alert_followups WHERE incident_id = $1 AND version = $2',
        [incidentId, version],
      );
      if (n === 0 && diagnosed)
        await this.q(
          'complete an alert follow-up',
          'UPDATE alert_followups SET diagnose = 0 WHERE incident_id = $1 AND diagnose_version <= $2',
          [incidentId, version],
        );
      return n === 1;
    });
  }

  async claimAlertFollowUp(
    incidentId: number,
    replica: string,
    now: number,
    leaseUntil: number,
  ): Promise<AlertFollowUp | undefined> {
    // SKIP LOCKED: a replica claiming it at this moment has it; never wait for that.
    const [row] = await this.rows<{
      incident_id: number;
      diagnose: number;
      version: number;
      requested_at: number;
    }>(
      'claim an alert follow-up',
      `UPDATE alert_followups SET claimed_by = $2, lease_until = $4
       WHERE incident_id = (SELECT incident_id FROM alert_followups WHERE incident_id = $1
                              AND (claimed_by IS NULL OR claimed_by = $2 OR lease_until <= $3)
                            FOR UPDATE SKIP LOCKED)
       RETURNING incident_id, diagnose, version, requested_at`,
      [incidentId, replica, now, leaseUntil],
    );
    return row === undefined
      ? undefined
      : {
          incidentId: row.incident_id,
          diagnose: row.diagnose === 1,
          version: row.version,
          requestedAt: row.requested_at,
        };
  }

  async releaseAlertFollowUp(incidentId: number, replica: string): Promise<void> {
    await this.q(
      'release an alert follow-up',
      'UPDATE alert_followups SET claimed_by = NULL, lease_until = 0 WHERE incident_id = $1 AND claimed_by = $2',
      [incidentId, replica],
    );
  }

  // ── dead-man's switch (replicas) ──────────────────────────────────────────────────────

  async recordWatchdog(at: number): Promise<void> {
    await this.q(
      'record a Watchdog',
      `INSERT INTO deadman AS d (id, last_seen) VALUES (1, $1)
       ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(COALESCE(d.last_seen, 0), excluded.last_seen)`,
      [at],
    );
  }

  async deadmanRecord(): Promise<DeadmanRecord> {
    const [row] = await this.rows<{ last_seen: number | null; lost_since: number | null }>(
      "read the dead-man's switch",
      'SELECT last_seen, lost_since FROM deadman WHERE id = 1',
    );
    return { lastSeen: row?.last_seen ?? null, lostSince: row?.lost_since ?? null };
  }

  async setDeadmanLost(since: number | null): Promise<void> {
    await this.q(
      "record the dead-man's switch",
      'INSERT INTO deadman (id, lost_since) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET lost_since = excluded.lost_since',
      [since],
    );
  }

  // ── VIP holder ──────────────────────────────────────────────────────────────────────

  async vipHolder(): Promise<VipHolderRecord | undefined> {
    const [row] = await this.rows<{ holder: string; at: number; reporter: string | null }>(
      'read the VIP holder',
      "SELECT holder, at, reporter FROM vip_holder WHERE kind = 'known'",
    );
    return row === undefined ? undefined : { holder: row.holder, at: row.at, reporter: row.reporter };
  }

  async setVipHolder(holder: string, at: number, reporter: string | null): Promise<void> {
    await this.setVipRow('known', holder, at, reporter);
  }

  async watchedVipHolder(): Promise<{ holder: string | null; at: number } | undefined> {
    const [row] = await this.rows<{ holder: string | null; at: number }>(
      'read the watched VIP holder',
      "SELECT holder, at FROM vip_holder WHERE kind = 'watched'",
    );
    return row === undefined ? undefined : { holder: row.holder, at: row.at };
  }

  async setWatchedVipHolder(holder: string | null, at: number): Promise<void> {
    await this.setVipRow('watched', holder, at, null);
  }

  private async setVipRow(
    kind: 'known' | 'watched',
    holder: string | null,
    at: number,
    reporter: string | null,
  ): Promise<void> {
    await this.q(
      'record the VIP holder',
      `INSERT INTO vip_holder (kind, holder, at, reporter) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind) DO UPDATE SET holder = excluded.holder, at = excluded.at, reporter = excluded.reporter`,
      [kind, holder, at, reporter],
    );
  }

  // ── inbox ─────────────────────────────────────────────────────────────────────────────

  async addToInbox(kind: string, payload: unknown, now: number): Promise<number> {
    const [row] = await this.rows<{ id: number }>(
      'add to the inbox',
      'INSERT INTO inbox (kind, payload, received_at) VALUES ($1, $2, $3) RETURNING id',
      [kind, JSON.stringify(payload), now],
    );
    return row?.id ?? 0;
  }

  async inbox(kind: string): Promise<InboxRow[]> {
    const rows = await this.rows<{
      id: number;
      kind: string;
      payload: string;
      received_at: number;
      attempts: number;
    }>(
      'read the inbox',
      'SELECT id, kind, payload, received_at, attempts FROM inbox WHERE kind = $1 ORDER BY id',
      [kind],
    );
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      payload: JSON.parse(r.payload) as unknown,
      receivedAt: r.received_at,
      attempts: r.attempts,
    }));
  }

  async removeFromInbox(id: number): Promise<void> {
    await this.q('remove from the inbox', 'DELETE FROM inbox WHERE id = $1', [id]);
  }

  async inboxAttemptFailed(id: number, error: string): Promise<number> {
    const [row] = await this.rows<{ attempts: number }>(
      'count an inbox attempt',
      'UPDATE inbox SET attempts = attempts + 1, last_error = $1 WHERE id = $2 RETURNING attempts',
      [error.slice(0, 500), id],
    );
    return row?.attempts ?? 0;
  }

  // ── silences ──────────────────────────────────────────────────────────────────────────

  async insertSilence(
    silence: Omit<AlertSilence, 'id' | 'expiredAt' | 'expiredBy' | 'messageRef'>,
  ): Promise<AlertSilence> {
    const [row] = await this.rows<SilenceRow>(
      'record a silence',
      `INSERT INTO alert_silences (incident_id, silence_id, matchers, created_by, created_by_name, starts_at, ends_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [
        silence.incidentId,
        silence.silenceId,
        JSON.stringify(silence.matchers),
        silence.createdBy,
        silence.createdByName,
        silence.startsAt,
        silence.endsAt,
      ],
    );
    if (row === undefined) throw new OkomeError(ErrorCode.StoreFailed, 'store: silence not recorded');
    return toSilence(row);
  }

  async setSilenceMessageRef(ids: readonly number[], ref: string): Promise<void> {
    await this.q('set a silence message', 'UPDATE alert_silences SET message_ref = $1 WHERE id = ANY($2)', [
      ref,
      [...ids],
    ]);
  }

  async activeSilences(incidentId: number, now: number): Promise<AlertSilence[]> {
    const rows = await this.rows<SilenceRow>(
      'read silences',
      'SELECT * FROM alert_silences WHERE incident_id = $1 AND expired_at IS NULL AND ends_at > $2 ORDER BY id',
      [incidentId, now],
    );
    return rows.map(toSilence);
  }

  async markSilenceExpired(id: number, by: string, at: number): Promise<boolean> {
    const n = await this.changes(
      'expire a silence',
      'UPDATE alert_silences SET expired_at = $1, expired_by = $2 WHERE id = $3 AND expired_at IS NULL',
      [at, by, id],
    );
    return n === 1;
  }

  // ── drills ────────────────────────────────────────────────────────────────────────────

  async insertDrill(drill: Omit<Drill, 'id'>): Promise<Drill> {
    const [row] = await this.rows<{ id: number }>(
      'insert a drill',
      `INSERT INTO drills (${DRILL_COLUMNS.join(', ')}) VALUES (${DRILL_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
      drillColumns(drill),
    );
    return { ...drill, id: Number(row?.id) };
  }

  async drillById(id: number): Promise<Drill | undefined> {
    const [row] = await this.rows<{ id: number; record: string }>(
      'read a drill',
      'SELECT id, record FROM drills WHERE id = $1',
      [id],
    );
    return row === undefined ? undefined : toDrill(row);
  }

  async drillByApproval(approvalId: string): Promise<Drill | undefined> {
    const [row] = await this.rows<{ id: number; record: string }>(
      'read a drill',
      'SELECT id, record FROM drills WHERE approval_id = $1',
      [approvalId],
    );
    return row === undefined ? undefined : toDrill(row);
  }

  async compareAndSetDrill(next: Drill, expectedVersion: number): Promise<boolean> {
    const [, , phase, active, , version, , startedAt, finishedAt, outcome, record] = drillColumns(next);
    // One drill runs at a time: checked here so that the loser gets false, not a failed write.
    const n = await this.changes(
      'update a drill',
      `UPDATE drills SET phase = $1, active = $2, version = $3, started_at = $4, finished_at = $5, outcome = $6, record = $7
       WHERE id = $8 AND version = $9
         AND ($2::integer IS NULL OR NOT EXISTS (SELECT 1 FROM drills WHERE active = 1 AND id <> $8))`,
      [phase, active, version, startedAt, finishedAt, outcome, record, next.id, expectedVersion],
    );
    return n === 1;
  }

  async unfinishedDrills(): Promise<Drill[]> {
    const rows = await this.rows<{ id: number; record: string }>(
      'read unfinished drills',
      "SELECT id, record FROM drills WHERE phase <> 'finished' ORDER BY id",
    );
    return rows.map(toDrill);
  }

  async drills(limit: number): Promise<Drill[]> {
    const rows = await this.rows<{ id: number; record: string }>(
      'read drills',
      'SELECT id, record FROM drills ORDER BY id DESC LIMIT $1',
      [limit],
    );
    return rows.map(toDrill);
  }

  async lastDrills(): Promise<LastDrill[]> {
    const rows = await this.rows<{
      incident_number: string;
      id: number;
      kind: string;
      outcome: string;
      finished_at: number;
    }>(
      'read the last drills',
      `SELECT incident_number, id, kind, outcome, finished_at FROM drills
       WHERE finished_at IS NOT NULL AND outcome = ANY($1) ORDER BY finished_at, id`,
      [[...RAN_OUTCOMES]],
    );
    return lastPerIncident(rows.map(toLastDrill));
  }

  // ── approvals and audit ───────────────────────────────────────────────────────────────

  async insertApproval(approval: Approval): Promise<void> {
    await this.q(
      'insert an approval',
      'INSERT INTO approvals (id, incident_id, action_id, state, version, expires_at, record) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [
        approval.id,
        approval.incidentId,
        approval.actionId,
        approval.state,
        approval.version,
        approval.expiresAt,
        JSON.stringify(approval),
      ],
    );
  }

  async approvalById(id: string): Promise<Approval | undefined> {
    const [row] = await this.rows<{ record: string }>(
      'read an approval',
      'SELECT record FROM approvals WHERE id = $1',
      [id],
    );
    return row === undefined ? undefined : (JSON.parse(row.record) as Approval);
  }

  async compareAndSetApproval(next: Approval, expectedVersion: number): Promise<boolean> {
    const n = await this.changes(
      'update an approval',
      'UPDATE approvals SET state = $1, version = $2, expires_at = $3, record = $4 WHERE id = $5 AND version = $6',
      [next.state, next.version, next.expiresAt, JSON.stringify(next), next.id, expectedVersion],
    );
    return n === 1;
  }

  async approvalsInStates(states: readonly Approval['state'][]): Promise<Approval[]> {
    if (states.length === 0) return [];
    const rows = await this.rows<{ record: string }>(
      'read approvals',
      'SELECT record FROM approvals WHERE state = ANY($1) ORDER BY rowid',
      [[...states]],
    );
    return rows.map((r) => JSON.parse(r.record) as Approval);
  }

  async setApprovalCardRef(id: string, ref: string): Promise<void> {
    await this.q('set an approval card', 'UPDATE approvals SET card_ref = $1 WHERE id = $2', [ref, id]);
  }

  async approvalCardRef(id: string): Promise<string | undefined> {
    const [row] = await this.rows<{ card_ref: string | null }>(
      'read an approval card',
      'SELECT card_ref FROM approvals WHERE id = $1',
      [id],
    );
    return row?.card_ref ?? undefined;
  }

  async lastFinishedAt(actionId: string, targets: readonly string[]): Promise<number | undefined> {
    const rows = await this.rows<{ record: string }>(
      'read finished runs',
      "SELECT record FROM approvals WHERE action_id = $1 AND state IN ('succeeded', 'failed', 'interrupted')",
      [actionId],
    );
    let last: number | undefined;
    for (const r of rows) {
      const a = JSON.parse(r.record) as Approval;
      if (a.finishedAt === null || !a.targets.some((t) => targets.includes(t))) continue;
      last = Math.max(last ?? 0, a.finishedAt);
    }
    return last;
  }

  async appendAudit(entry: Omit<StoredAuditEntry, 'id'>): Promise<void> {
    await this.q(
      'append to the audit',
      `INSERT INTO audit (at, approval_id, incident_id, action_id, actor, event, verdict, code, reason, state_before, state_after, targets, commands)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
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
      ],
    );
  }

  async auditSince(at: number): Promise<StoredAuditEntry[]> {
    const rows = await this.rows<Record<string, unknown>>(
      'read the audit',
      'SELECT * FROM audit WHERE at >= $1 ORDER BY id',
      [at],
    );
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
    const rows = await this.rows<IncidentCoverageSqlRow>(
      'read the runbook coverage',
      INCIDENT_COVERAGE_SQL.postgres,
    );
    return rows.map(toIncidentCoverage);
  }
}

const LATEST_INCIDENT_BY_KEY =
  "SELECT * FROM incidents WHERE key = $1 ORDER BY status = 'open' DESC, opened_at DESC, id DESC LIMIT 1";

function isUniqueViolation(error: unknown): boolean {
  const cause = error instanceof OkomeError ? error.cause : error;
  return (cause as { code?: unknown } | undefined)?.code === '23505';
}
