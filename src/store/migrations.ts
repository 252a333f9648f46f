import type Database from 'better-sqlite3';
import { ErrorCode, OkomeError } from '../errors.js';

/**
 * The schema, as an ordered list: migration N (1-based) takes the database from version N-1 to
 * N. Append only: never edit a migration that has shipped, add the next one. Approvals, audit
 * and alerts will come as later migrations referencing `incidents(id)` and `messages(ref)`.
 *
 * Times are INTEGER epoch milliseconds. Open-ended enumerations (timeline kinds) are checked
 * in TypeScript, not by CHECK constraints, because SQLite cannot alter a CHECK without
 * rebuilding the table; closed ones (states, ops) are checked here.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE messages (
    ref TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    ts TEXT,
    thread_ref TEXT REFERENCES messages(ref),
    created_at INTEGER NOT NULL,
    posted_at INTEGER
  ) STRICT;
  -- Lets a button click (channel + message_ts) be mapped back to its ref.
  CREATE UNIQUE INDEX messages_by_ts ON messages(channel, ts) WHERE ts IS NOT NULL;

  CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    number TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    channel TEXT NOT NULL,
    root_ref TEXT REFERENCES messages(ref),
    requester TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    resolved_at INTEGER,
    resolved_reason TEXT,
    last_report TEXT,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
  ) STRICT;
  CREATE UNIQUE INDEX incidents_one_open_per_key ON incidents(key) WHERE status = 'open';
  CREATE INDEX incidents_by_key ON incidents(key, opened_at);

  CREATE TABLE timeline (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    data TEXT
  ) STRICT;
  CREATE INDEX timeline_by_incident ON timeline(incident_id, at, id);

  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    queue_key TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('post', 'update', 'ephemeral')),
    message_ref TEXT REFERENCES messages(ref),
    thread_ref TEXT REFERENCES messages(ref),
    user TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    CHECK ((op = 'ephemeral') = (user IS NOT NULL)),
    CHECK ((op = 'ephemeral') = (message_ref IS NULL))
  ) STRICT;
  -- Partial indexes: delivery only ever looks at pending rows, which stay few.
  CREATE INDEX outbox_pending_by_queue ON outbox(queue_key, seq) WHERE state = 'pending';
  CREATE INDEX outbox_pending_by_message ON outbox(message_ref, seq) WHERE state = 'pending';
  CREATE INDEX outbox_post_by_message ON outbox(message_ref) WHERE op = 'post';
  CREATE INDEX outbox_sent_at ON outbox(sent_at) WHERE state = 'sent';

  CREATE TABLE seen_events (
    key TEXT PRIMARY KEY,
    at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX seen_events_at ON seen_events(at);
  `,
  // 2: approvals (the record as JSON, with the columns queries and compare-and-set need) and
  // the append-only audit trail of every click, decision and execution.
  `
  CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    action_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    card_ref TEXT REFERENCES messages(ref),
    record TEXT NOT NULL
  ) STRICT;
  CREATE INDEX approvals_by_state ON approvals(state);
  CREATE INDEX approvals_by_incident ON approvals(incident_id, action_id);

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    approval_id TEXT,
    incident_id INTEGER,
    action_id TEXT,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    verdict TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    state_before TEXT,
    state_after TEXT,
    targets TEXT NOT NULL,
    commands TEXT NOT NULL
  ) STRICT;
  CREATE INDEX audit_at ON audit(at);
  -- Append-only: the trail cannot be edited or pruned through this database.
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
  `,
  // 3: the alerts an incident has seen (one row per fingerprint: repeats only bump the count),
  // and the one summary message per incident that repeats update instead of posting anew.
  `
  CREATE TABLE incident_alerts (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    node TEXT,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
  ) STRICT;
  CREATE TABLE incident_summaries (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
    message_ref TEXT NOT NULL REFERENCES messages(ref)
  ) STRICT;
  `,
  // 4: who acknowledged an incident and when (time to acknowledge), and how often a flapping
  // symptom reopened it.
  `
  ALTER TABLE incidents ADD COLUMN acknowledged_by TEXT;
  ALTER TABLE incidents ADD COLUMN acknowledged_at INTEGER;
  ALTER TABLE incidents ADD COLUMN reopened_count INTEGER NOT NULL DEFAULT 0;
  `,
  // 5: Alertmanager silences made from an incident's thread: one row per Alertmanager silence
  // (an incident with several alerts gets one each), the message that shows them, who ended them.
  `
  CREATE TABLE alert_silences (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    silence_id TEXT NOT NULL,
    matchers TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    message_ref TEXT REFERENCES messages(ref),
    expired_at INTEGER,
    expired_by TEXT
  ) STRICT;
  CREATE INDEX alert_silences_by_incident ON alert_silences(incident_id, ends_at);
  `,
  // 6: what an accepted webhook still owes after its reply (an alert's summary and diagnosis, a
  // keepalived transition), written with its seen mark: a crash before it is done is resumed.
  `
  CREATE TABLE alert_followups (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
    diagnose INTEGER NOT NULL CHECK (diagnose IN (0, 1)),
    version INTEGER NOT NULL,
    requested_at INTEGER NOT NULL
  ) STRICT;
  -- Webhook events accepted (2xx) but not yet handled (a keepalived transition), written with
  -- their seen mark; handled after the reply, at start-up and by the periodic sweep.
  CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  ) STRICT;
  `,
];

/**
 * Brings the database to the latest version, each migration in its own transaction with its
 * version row, so a crash leaves a consistent version. Running it again changes nothing.
 * Returns the resulting version.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly string[] = MIGRATIONS,
  now: () => number = Date.now,
): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const current = schemaVersion(db);
  if (current > migrations.length) {
    throw new OkomeError(
      ErrorCode.StoreSchemaTooNew,
      `the database ${db.name} is at schema version ${current}, but this okome-bot knows versions up to ` +
        `${migrations.length}. A newer okome-bot wrote it: run that version (or a newer one), or point ` +
        'store.path at another file. Downgrading the schema is not supported.',
      { userSafe: true },
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  migrations.forEach((sql, index) => {
    const version = index + 1;
    if (version <= current) return;
    // Re-read inside the write lock: another process may have applied it meanwhile.
    db.transaction(() => {
      if (schemaVersion(db) >= version) return;
      db.exec(sql);
      record.run(version, now());
    }).immediate();
  });
  return schemaVersion(db);
}

export function schemaVersion(db: Database.Database): number {
  const row = db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as
    | { version: number | null }
    | undefined;
  return row?.version ?? 0;
}
