import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import { MIGRATIONS, migrate, schemaVersion } from '../../src/store/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';

let dir: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'okome-store-'));
});
afterEach(async () => {
  rmSync(dir, { recursive: true, force: true });
});

function raw(path: string): Database.Database {
  return new Database(path);
}

describe('migrations', () => {
  it('creates the schema at the latest version with WAL, foreign keys and a busy timeout', async () => {
    const path = join(dir, 'okome.db');
    const store = openSqliteStore({ path, busyTimeoutMs: 1234 });
    await store.close();
    const db = raw(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    expect(tables).toEqual([
      'alert_followups',
      'alert_silences',
      'approvals',
      'audit',
      'channel_pacing',
      'deadman',
      'drills',
      'inbox',
      'incident_alerts',
      'incident_summaries',
      'incidents',
      'leader_lease',
      'messages',
      'outbox',
      'schema_migrations',
      'seen_events',
      'timeline',
      'vip_holder',
    ]);
    db.close();
  });

  it('sets the connection pragmas', async () => {
    const store = openSqliteStore({ path: join(dir, 'p.db'), busyTimeoutMs: 1234 });
    expect(store.settings()).toEqual({
      path: join(dir, 'p.db'),
      schemaVersion: MIGRATIONS.length,
      journalMode: 'wal',
      foreignKeys: true,
      busyTimeoutMs: 1234,
      synchronous: 'full',
    });
    await store.close();
  });

  it('is idempotent: reopening applies nothing twice and keeps the data', async () => {
    const path = join(dir, 'okome.db');
    const first = openSqliteStore({ path });
    await first.openOrReuseIncident({
      key: '1:pi-a',
      number: '1',
      title: 'nginx down',
      channel: 'C1',
      requester: 'U1',
      now: 1,
    });
    await first.close();
    for (let i = 0; i < 3; i++) await openSqliteStore({ path }).close();
    const db = raw(path);
    expect(db.prepare('SELECT version FROM schema_migrations').pluck().all()).toEqual(
      MIGRATIONS.map((_, i) => i + 1),
    );
    expect(db.prepare('SELECT COUNT(*) FROM incidents').pluck().get()).toBe(1);
    expect(migrate(db)).toBe(MIGRATIONS.length);
    db.close();
  });

  it('applies only the new migrations of a longer list, in order', async () => {
    const path = join(dir, 'okome.db');
    await openSqliteStore({ path }).close();
    const next = [
      ...MIGRATIONS,
      'CREATE TABLE later (id INTEGER PRIMARY KEY, at INTEGER NOT NULL) STRICT',
      'ALTER TABLE later ADD COLUMN actor TEXT',
    ];
    const store = openSqliteStore({ path, migrations: next, now: () => 42 });
    await store.close();
    const db = raw(path);
    const n = MIGRATIONS.length;
    expect(db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all()).toEqual([
      ...MIGRATIONS.map((_, i) => ({ version: i + 1, applied_at: expect.any(Number) })),
      { version: n + 1, applied_at: 42 },
      { version: n + 2, applied_at: 42 },
    ]);
    expect(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('later')).toEqual([
      'id',
      'at',
      'actor',
    ]);
    db.close();
  });

  it("migration 7 rebuilds the outbox for the 'upload' op, keeping every row and index", async () => {
    const path = join(dir, 'okome.db');
    // A database at version 6 (made by the migrations themselves: this version's store prepares
    // statements for the later columns, and opens only its own schema).
    const before = raw(path);
    migrate(before, MIGRATIONS.slice(0, 6));
    before.prepare("INSERT INTO messages (ref, channel, created_at) VALUES ('m1', 'C1', 1)").run();
    before
      .prepare(
        `INSERT INTO outbox (seq, channel, queue_key, op, message_ref, payload, state, attempts, created_at)
         VALUES (7, 'C1', 'C1:m1', 'post', 'm1', '{"text":"kept"}', 'pending', 2, 1)`,
      )
      .run();
    expect(() =>
      before
        .prepare(
          `INSERT INTO outbox (seq, channel, queue_key, op, message_ref, payload, created_at)
           VALUES (8, 'C1', 'C1:m1', 'upload', 'm1', '{}', 1)`,
        )
        .run(),
    ).toThrow(/CHECK constraint/);
    before.close();
    const store = openSqliteStore({ path });
    const [head] = await store.pendingHeads();
    expect(head).toMatchObject({ seq: 7, op: 'post', payload: '{"text":"kept"}', attempts: 2 });
    await store.insertOutbox({
      channel: 'C1',
      queueKey: 'C1:m1',
      op: 'upload',
      messageRef: 'm1',
      threadRef: null,
      user: null,
      payload: '{}',
      now: 2,
    });
    await store.close();
    const db = raw(path);
    expect(
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL ORDER BY name",
        )
        .pluck()
        .all(),
    ).toEqual([
      'outbox_pending_by_message',
      'outbox_pending_by_queue',
      'outbox_post_by_message',
      'outbox_sent_at',
    ]);
    expect(db.pragma('foreign_key_check')).toEqual([]);
    db.close();
  });

  it('rolls back a failing migration entirely and keeps the previous version', async () => {
    const path = join(dir, 'okome.db');
    const broken = [...MIGRATIONS, 'CREATE TABLE half (id INTEGER); THIS IS NOT SQL'];
    expect(() => openSqliteStore({ path, migrations: broken })).toThrow(/cannot prepare the database/);
    const db = raw(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").pluck().get()).toBe(0);
    db.close();
  });

  it('refuses to start on a database from a newer okome-bot, saying what to do', async () => {
    const path = join(dir, 'okome.db');
    await openSqliteStore({ path }).close();
    const db = raw(path);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
      MIGRATIONS.length + 4,
      0,
    );
    db.close();
    let caught: unknown;
    try {
      openSqliteStore({ path });
    } catch (error) {
      caught = error;
    }
    expect(isOkomeError(caught, ErrorCode.StoreSchemaTooNew)).toBe(true);
    expect(String((caught as Error).message)).toMatch(
      new RegExp(`schema version ${MIGRATIONS.length + 4}.*knows versions up to ${MIGRATIONS.length}`),
    );
  });

  it('names the path and the fix when the file cannot be opened', async () => {
    let caught: unknown;
    try {
      openSqliteStore({ path: join(dir, 'no', 'such', 'dir', 'okome.db') });
    } catch (error) {
      caught = error;
    }
    expect(isOkomeError(caught, ErrorCode.StoreFailed)).toBe(true);
    expect((caught as Error).message).toMatch(/no\/such\/dir\/okome\.db.*store\.path/);
  });
});
