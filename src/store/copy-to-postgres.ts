import Database from 'better-sqlite3';
import pg from 'pg';
import { ErrorCode, OkomeError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { migratePostgres } from './postgres-migrate.js';
import { describeDatabaseUrl } from './postgres-store.js';
import { messageOf } from './store-rows.js';

/**
 * `okome store migrate --to postgres`: copies a SQLite store, row for row, into an empty
 * PostgreSQL database brought to the same schema version, in one transaction. Generic over
 * tables and columns (both dialects have the same ones, migration for migration), so a new
 * migration needs nothing here; a column one side lacks is refused by name, never dropped.
 */

export interface CopiedTable {
  readonly table: string;
  readonly rows: number;
}

export interface CopyResult {
  readonly version: number;
  readonly tables: readonly CopiedTable[];
}

/** Columns PostgreSQL fills itself (insertion order as SQLite's implicit rowid), never copied. */
const GENERATED_ONLY: Readonly<Record<string, readonly string[]>> = { approvals: ['rowid'] };

/** Rows per INSERT: well under PostgreSQL's 65,535 bind parameters for the widest table. */
const BATCH_ROWS = 500;

export async function copySqliteToPostgres(options: {
  readonly sqlitePath: string;
  readonly url: string;
  readonly now?: () => number;
}): Promise<CopyResult> {
  const where = describeDatabaseUrl(options.url);
  const source = new Database(options.sqlitePath, { readonly: true, fileMustExist: true });
  const client = new pg.Client({ connectionString: options.url, application_name: 'okome store migrate' });
  client.on('error', () => {});
  try {
    const version = sqliteVersion(source);
    if (version !== MIGRATIONS.length) {
      throw new OkomeError(
        version > MIGRATIONS.length ? ErrorCode.StoreSchemaTooNew : ErrorCode.StoreFailed,
        `the SQLite store ${options.sqlitePath} is at schema version ${version}; this okome-bot copies version ` +
          `${MIGRATIONS.length}. ${version > MIGRATIONS.length ? 'Copy it with the okome-bot that wrote it.' : 'Start `okome serve` of this version on it once to migrate it, then copy.'}`,
        { userSafe: true },
      );
    }
    try {
      await client.connect();
    } catch (error) {
      throw new OkomeError(
        ErrorCode.StoreFailed,
        `cannot connect to PostgreSQL at ${where}: ${messageOf(error)}. Check OKOME_DATABASE_URL (and PGPASSWORD).`,
        { cause: error, userSafe: true },
      );
    }
    await migratePostgres(client, options.now === undefined ? {} : { now: options.now });
    const tables = tablesInDependencyOrder(source);
    await client.query('BEGIN');
    try {
      const copied: CopiedTable[] = [];
      for (const table of tables) {
        const columns = await matchingColumns(source, client, table);
        const existing = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`);
        if (Number(existing.rows[0]?.n ?? 0) > 0) {
          throw new OkomeError(
            ErrorCode.StoreFailed,
            `the PostgreSQL database ${where} already holds rows in ${table}: okome copies only into an empty ` +
              'database, so nothing is merged or overwritten. To resolve, point OKOME_DATABASE_URL at a new database.',
            { userSafe: true },
          );
        }
        copied.push({ table, rows: await copyTable(source, client, table, columns) });
      }
      await resetIdentities(client, tables);
      await client.query('COMMIT');
      return { version, tables: copied };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  } finally {
    source.close();
    await client.end().catch(() => {});
  }
}

function sqliteVersion(db: Database.Database): number {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (exists === undefined) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** Every store table, parents before the tables whose foreign keys point at them. */
function tablesInDependencyOrder(db: Database.Database): string[] {
  const names = (
    db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name",
      )
      .all() as { name: string }[]
  ).map((r) => r.name);
  const parents = new Map(
    names.map((name) => [
      name,
      new Set(
        (db.prepare(`PRAGMA foreign_key_list(${quote(name)})`).all() as { table: string }[])
          .map((fk) => fk.table)
          .filter((t) => t !== name && names.includes(t)),
      ),
    ]),
  );
  const ordered: string[] = [];
  while (ordered.length < names.length) {
    const next = names.find(
      (n) => !ordered.includes(n) && [...(parents.get(n) ?? [])].every((p) => ordered.includes(p)),
    );
    if (next === undefined) throw new Error(`foreign keys form a cycle among ${names.join(', ')}`);
    ordered.push(next);
  }
  return ordered;
}

async function matchingColumns(db: Database.Database, client: pg.Client, table: string): Promise<string[]> {
  const fromSqlite = (db.prepare(`PRAGMA table_info(${quote(table)})`).all() as { name: string }[]).map(
    (c) => c.name,
  );
  const generated = GENERATED_ONLY[table] ?? [];
  const fromPostgres = (
    await client.query<{ name: string }>(
      'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
      [table],
    )
  ).rows
    .map((r) => r.name)
    .filter((name) => !generated.includes(name));
  const onlySqlite = fromSqlite.filter((c) => !fromPostgres.includes(c));
  const onlyPostgres = fromPostgres.filter((c) => !fromSqlite.includes(c));
  if (fromPostgres.length === 0 || onlySqlite.length > 0 || onlyPostgres.length > 0) {
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `table ${table} differs between the stores (only in SQLite: ${onlySqlite.join(', ') || 'none'}; only in ` +
        `PostgreSQL: ${fromPostgres.length === 0 ? 'the table is missing' : onlyPostgres.join(', ') || 'none'}). ` +
        "Nothing was copied. This is a bug in okome-bot's migrations: report it with both lists.",
      { userSafe: true },
    );
  }
  return fromSqlite;
}

/**
 * Rows in SQLite's rowid order (ids, and the order PostgreSQL's generated rowid then keeps);
 * a self-referencing table (messages: thread replies point at their root) gets roots first.
 */
async function copyTable(
  db: Database.Database,
  client: pg.Client,
  table: string,
  columns: readonly string[],
): Promise<number> {
  const selfRefs = (
    db.prepare(`PRAGMA foreign_key_list(${quote(table)})`).all() as { table: string; from: string }[]
  )
    .filter((fk) => fk.table === table)
    .map((fk) => fk.from);
  const order = selfRefs.length === 0 ? '' : `${selfRefs.map((c) => `${quote(c)} IS NOT NULL`).join(', ')}, `;
  const hasRowid = (db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).get(table) as { sql: string })
    .sql;
  const byRowid = /WITHOUT ROWID/i.test(hasRowid) ? '1' : 'rowid';
  const select = db.prepare(
    `SELECT ${columns.map(quote).join(', ')} FROM ${quote(table)} ORDER BY ${order}${byRowid}`,
  );
  select.raw(true);
  let count = 0;
  let batch: unknown[][] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const values = batch
      .map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(', ')})`)
      .join(', ');
    await client.query(
      `INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES ${values}`,
      batch.flat(),
    );
    count += batch.length;
    batch = [];
  };
  for (const row of select.iterate() as Iterable<unknown[]>) {
    batch.push(row);
    if (batch.length === BATCH_ROWS) await flush();
  }
  await flush();
  return count;
}

/** Identity columns and the outbox sequence continue after the copied ids. */
async function resetIdentities(client: pg.Client, tables: readonly string[]): Promise<void> {
  const identities = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND is_identity = 'YES'`,
  );
  for (const { table_name: table, column_name: column } of identities.rows) {
    if (!tables.includes(table)) continue;
    await client.query(
      `SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE((SELECT MAX(${quote(column)}) FROM ${quote(table)}), 0), 1), (SELECT COUNT(*) > 0 FROM ${quote(table)}))`,
      [table, column],
    );
  }
  await client.query(
    "SELECT setval('outbox_seq', GREATEST(COALESCE((SELECT MAX(seq) FROM outbox), 0), 1), (SELECT COUNT(*) > 0 FROM outbox))",
  );
}
