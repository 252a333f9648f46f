import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { ErrorCode, OkomeError } from '../errors.js';

/**
 * One serving process per store. `okome serve` acquires it before it opens the store, so its
 * start-up recovery and its outbox never run beside another bot's, and releases it after the
 * store is closed. The SQLite store's lock is a kernel lock on a file next to the database
 * (fileServeLock); a PostgreSQL store would implement this port with a lease instead (a row
 * with an expiry, renewed while serving, and leases on running approvals and outbox rows).
 */
export interface ServeLock {
  /** Takes the lock, or throws OKOME_SERVE_LOCK_HELD naming the process that holds it. */
  acquire(): Promise<void>;
  /** Gives the lock up; a process that dies gives it up too. */
  release(): Promise<void>;
}

/** The process that holds (or last held) a store's lock, as it recorded itself. */
export interface ServeLockHolder {
  readonly pid: number;
  readonly host: string;
  readonly since: number;
}

export interface FileServeLockOptions {
  readonly pid?: number;
  readonly host?: string;
  readonly now?: () => number;
  /** How long acquire waits for a holder to let go before refusing (default 1000 ms). */
  readonly waitMs?: number;
}

/** The lock file of a database: the same path with `.lock` appended. */
export function serveLockPath(storePath: string): string {
  return `${storePath}.lock`;
}

/**
 * The lock is SQLite's write lock on its own small database, `<store>.lock` (never the store's
 * file: readers of the store stay free). SQLite takes it with fcntl, so the kernel releases it
 * when the holder exits in any way (SIGKILL, power cut of the process): no stale lock to detect,
 * no PID that can be reused, no timer that can lapse. The holder records itself in that file
 * first, so a refused process can name it. Nothing else in the process may open the lock file:
 * closing any descriptor of it would drop a POSIX lock.
 */
export function fileServeLock(storePath: string, options: FileServeLockOptions = {}): ServeLock {
  if (storePath === ':memory:') return { acquire: async () => {}, release: async () => {} };
  const path = serveLockPath(storePath);
  const me: ServeLockHolder = {
    pid: options.pid ?? process.pid,
    host: options.host ?? hostname(),
    since: 0,
  };
  const now = options.now ?? Date.now;
  let db: Database.Database | undefined;
  return {
    async acquire() {
      if (db !== undefined) return;
      const lockDb = openLockDb(path, options.waitMs ?? 1000);
      try {
        takeLock(lockDb, { ...me, since: now() }, storePath, path);
        db = lockDb;
      } catch (error) {
        lockDb.close();
        throw error;
      }
    },
    async release() {
      // Rolling back the empty transaction that holds the lock, then closing, lets it go.
      db?.close();
      db = undefined;
    },
  };
}

function openLockDb(path: string, waitMs: number): Database.Database {
  try {
    const db = new Database(path, { timeout: waitMs });
    // A rollback journal: the holder's open write transaction must not stop others reading
    // who holds it (WAL would work too, but leaves -wal and -shm files beside the lock).
    db.pragma('journal_mode = DELETE');
    return db;
  } catch (error) {
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot open the lock file ${path}: ${error instanceof Error ? error.message : String(error)}. ` +
        'Check that store.path points into an existing, writable directory.',
      { cause: error, userSafe: true },
    );
  }
}

/**
 * Records this process as the holder, then keeps a write transaction open: that transaction is
 * the lock. Between the commit and the new BEGIN another process may slip in and record itself;
 * then the row is not ours, and that process holds it (or is about to).
 */
function takeLock(db: Database.Database, me: ServeLockHolder, storePath: string, path: string): void {
  if (!tryBegin(db)) throw lockHeld(readHolder(db), storePath, path);
  db.exec(
    'CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, since INTEGER NOT NULL)',
  );
  db.prepare('INSERT OR REPLACE INTO holder (id, pid, host, since) VALUES (1, ?, ?, ?)').run(
    me.pid,
    me.host,
    me.since,
  );
  db.exec('COMMIT');
  const again = tryBegin(db);
  const holder = readHolder(db);
  if (again && holder?.pid === me.pid && holder.host === me.host && holder.since === me.since) return;
  if (db.inTransaction) db.exec('ROLLBACK');
  throw lockHeld(holder, storePath, path);
}

function tryBegin(db: Database.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw new OkomeError(
      ErrorCode.StoreFailed,
      `cannot lock ${db.name}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, userSafe: true },
    );
  }
}

function readHolder(db: Database.Database): ServeLockHolder | undefined {
  try {
    return db.prepare('SELECT pid, host, since FROM holder WHERE id = 1').get() as
      | ServeLockHolder
      | undefined;
  } catch {
    // The first holder has not recorded itself yet (no table): it is still known to hold.
    return undefined;
  }
}

function lockHeld(holder: ServeLockHolder | undefined, storePath: string, path: string): OkomeError {
  const who =
    holder === undefined
      ? 'another okome serve (starting: its PID is not recorded yet)'
      : `another okome serve (PID ${holder.pid} on ${holder.host}, since ${new Date(holder.since).toISOString()})`;
  return new OkomeError(
    ErrorCode.ServeLockHeld,
    `${who} serves the store ${storePath} (lock ${path}); one bot per store. To resolve, stop that ` +
      'bot first, or point store.path at another file. `okome audit` reads the store while a bot serves.',
    { userSafe: true },
  );
}
