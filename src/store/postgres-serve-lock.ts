import { hostname } from 'node:os';
import pg from 'pg';
import { ErrorCode, OkomeError } from '../errors.js';
import { ADVISORY_CLASS, AdvisoryLock } from './postgres-migrate.js';
import { describeDatabaseUrl } from './postgres-store.js';
import type { ServeLock } from './serve-lock.js';

/**
 * The serve lock of a PostgreSQL store: a session-level advisory lock held on a connection of
 * its own for as long as the bot serves. The server releases it when that connection ends, so
 * a killed bot (or a lost network) gives it up. The holder names itself in application_name,
 * which a refused process reads back from pg_stat_activity.
 *
 * Replicas (store.replicas) hold it shared: any number of them serve together, while a bot
 * without replicas (which holds it alone) and `okome store migrate` (which copies into the
 * database) are kept out, and the other way round.
 */
export interface PostgresServeLock extends ServeLock {
  /** The backend (server process) holding the lock while it is held: a migration excludes it. */
  backendPid(): number | undefined;
}

export function postgresServeLock(
  url: string,
  options: { pid?: number; host?: string; now?: () => number; shared?: boolean } = {},
): PostgresServeLock {
  const shared = options.shared === true;
  const me = `okome serve ${options.pid ?? process.pid}@${options.host ?? hostname()} since ${new Date(
    (options.now ?? Date.now)(),
  ).toISOString()}`;
  let client: pg.Client | undefined;
  let backend: number | undefined;
  return {
    backendPid: () => backend,
    async acquire() {
      if (client !== undefined) return;
      const c = new pg.Client({ connectionString: url, application_name: me.slice(0, 63) });
      c.on('error', () => {});
      try {
        await c.connect();
        const got = await c.query<{ ok: boolean }>(
          `SELECT ${shared ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock'}($1, $2) AS ok`,
          [ADVISORY_CLASS, AdvisoryLock.serve],
        );
        if (got.rows[0]?.ok !== true) {
          const holder = await c.query<{ name: string }>(
            `SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.classid = $1 AND l.objid = $2 AND l.granted LIMIT 1`,
            [ADVISORY_CLASS, AdvisoryLock.serve],
          );
          throw new OkomeError(
            ErrorCode.ServeLockHeld,
            `another okome serve (${holder.rows[0]?.name ?? 'unknown'}) serves the PostgreSQL store ` +
              `${describeDatabaseUrl(url)}${
                shared
                  ? ' without store.replicas (one bot per store). To resolve, stop it, or set store.replicas: true for every bot on this database.'
                  : '; one bot per store unless every bot sets store.replicas: true. To resolve, stop that bot first.'
              } \`okome audit\` reads the store while a bot serves.`,
            { userSafe: true },
          );
        }
        const pid = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        backend = pid.rows[0]?.pid;
        client = c;
      } catch (error) {
        await c.end().catch(() => {});
        if (error instanceof OkomeError) throw error;
        throw new OkomeError(
          ErrorCode.StoreFailed,
          `cannot take the serve lock on PostgreSQL at ${describeDatabaseUrl(url)}: ${
            error instanceof Error ? error.message : String(error)
          }. Check OKOME_DATABASE_URL.`,
          { cause: error, userSafe: true },
        );
      }
    },
    async release() {
      const c = client;
      client = undefined;
      backend = undefined;
      // Ending the session releases its advisory locks.
      await c?.end().catch(() => {});
    },
  };
}
