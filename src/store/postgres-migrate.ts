import type pg from 'pg';
import { ErrorCode, OkomeError } from '../errors.js';
import { MIGRATIONS, type Migration, migrationSql } from './migrations.js';

/**
 * Advisory lock keys (two-int form): the class is okome's own, so nothing else sharing the
 * database collides with it.
 */
export const ADVISORY_CLASS = 0x6f6b6f6d; // 'okom'
export const AdvisoryLock = {
  /** Held while migrations run: two bots starting at once migrate one after the other. */
  migrate: 1,
  /** Held by the serving bot for as long as it serves (the serve lock). */
  serve: 2,
  /** Held for each write transaction: the store's writers go one at a time, as in SQLite. */
  write: 3,
} as const;

export interface MigrateOptions {
  readonly migrations?: readonly Migration[];
  readonly now?: () => number;
  /**
   * The backend holding this process's serve lock. When given, a migration is refused while any
   * other backend holds the serve lock: replicas of the running version would go on serving a
   * schema they do not know (a rolling upgrade across a schema version).
   */
  readonly ownServeBackend?: number;
}

/**
 * Brings a PostgreSQL database to the latest version under pg_advisory_lock: each migration in
 * its own transaction with its version row. Running it again changes nothing. Returns the
 * resulting version.
 */
export async function migratePostgres(client: pg.ClientBase, options: MigrateOptions = {}): Promise<number> {
  const migrations = options.migrations ?? MIGRATIONS;
  const now = options.now ?? Date.now;
  await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_CLASS, AdvisoryLock.migrate]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      applied_at BIGINT NOT NULL
    )`);
    const current = await postgresSchemaVersion(client);
    if (current > migrations.length) {
      throw new OkomeError(
        ErrorCode.StoreSchemaTooNew,
        `the PostgreSQL database is at schema version ${current}, but this okome-bot knows versions up to ` +
          `${migrations.length}. A newer okome-bot wrote it: run that version (or a newer one), or point ` +
          'OKOME_DATABASE_URL at another database. Downgrading the schema is not supported.',
        { userSafe: true },
      );
    }
    if (current < migrations.length && options.ownServeBackend !== undefined) {
      await refuseWhileOthersServe(client, options.ownServeBackend, current, migrations.length);
    }
    for (const [index, migration] of migrations.entries()) {
      const version = index + 1;
      if (version <= current) continue;
      await client.query('BEGIN');
      try {
        await client.query(migrationSql(migration, 'postgres'));
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
          version,
          now(),
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
    return await postgresSchemaVersion(client);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_CLASS, AdvisoryLock.migrate]);
  }
}

/**
 * Old replicas beside a migrated schema would write rows it no longer accepts (or miss columns it
 * needs), so an upgrade that migrates waits until every replica of the old version has stopped.
 * An upgrade within one schema version needs no migration and goes replica by replica.
 */
async function refuseWhileOthersServe(
  client: pg.ClientBase,
  ownServeBackend: number,
  current: number,
  target: number,
): Promise<void> {
  const others = await client.query<{ name: string }>(
    `SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.classid = $1 AND l.objid = $2 AND l.granted AND l.pid <> $3
     ORDER BY a.backend_start`,
    [ADVISORY_CLASS, AdvisoryLock.serve, ownServeBackend],
  );
  if (others.rows.length === 0) return;
  const names = others.rows.map((r) => r.name || 'unnamed').join('; ');
  throw new OkomeError(
    ErrorCode.StoreUpgradeRefused,
    `this okome-bot needs schema version ${target}, the database is at ${current}, and ` +
      `${others.rows.length === 1 ? 'another okome serve still serves it' : `${others.rows.length} other okome serve processes still serve it`} ` +
      `(${names}). They would go on writing the old schema, so the migration is refused and nothing was changed. ` +
      'To upgrade across a schema version: stop every replica, start one of this version (it migrates), then start ' +
      'the others with this version. Upgrades that need no migration go replica by replica.',
    { userSafe: true },
  );
}

/** 0 when the database has no schema yet. */
export async function postgresSchemaVersion(client: pg.ClientBase | pg.Pool): Promise<number> {
  const exists = await client.query<{ t: string | null }>(
    "SELECT to_regclass('schema_migrations')::text AS t",
  );
  if (exists.rows[0]?.t == null) return 0;
  const row = await client.query<{ version: number | null }>(
    'SELECT MAX(version) AS version FROM schema_migrations',
  );
  return row.rows[0]?.version ?? 0;
}
