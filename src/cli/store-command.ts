import { dirname, isAbsolute, resolve } from 'node:path';
import { configPath, loadConfig } from '../config/load-config.js';
import { readEnvOptions } from '../config/read-env.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { copySqliteToPostgres } from '../store/copy-to-postgres.js';
import { postgresServeLock } from '../store/postgres-serve-lock.js';
import { describeDatabaseUrl } from '../store/postgres-store.js';
import { fileServeLock } from '../store/serve-lock.js';
import { type CliIo, ExitCode } from './cli-io.js';

/**
 * `okome store migrate --to postgres [--from FILE]`: the SQLite store (FILE, else the config's
 * store.path) copied into the empty database OKOME_DATABASE_URL names. Both serve locks are
 * held throughout, so no bot writes either store meanwhile.
 */
export async function storeMigrateCommand(
  options: { config: string | undefined; to: string | undefined; from: string | undefined },
  io: CliIo,
): Promise<number> {
  if (options.to !== 'postgres') {
    throw new OkomeError(
      ErrorCode.UsageInvalid,
      `okome store migrate needs --to postgres${options.to === undefined ? '' : ` (not ${JSON.stringify(options.to)})`}: copying from SQLite into PostgreSQL is the one migration there is`,
      { userSafe: true },
    );
  }
  const file = resolve(io.cwd, configPath(options.config, io.env));
  const config = loadConfig(file);
  const url = readEnvOptions(io.env).databaseUrl;
  if (url === undefined) {
    throw new OkomeError(
      ErrorCode.EnvInvalid,
      'OKOME_DATABASE_URL is not set: set it to the empty PostgreSQL database to copy into (postgres://user@host:5432/database, the password in PGPASSWORD).',
      { userSafe: true },
    );
  }
  const from = options.from ?? config.store.path;
  const sqlitePath = isAbsolute(from)
    ? from
    : resolve(options.from === undefined ? dirname(file) : io.cwd, from);
  const sqliteLock = fileServeLock(sqlitePath);
  const postgresLock = postgresServeLock(url);
  await sqliteLock.acquire();
  try {
    await postgresLock.acquire();
    try {
      const result = await copySqliteToPostgres({ sqlitePath, url });
      const width = Math.max(...result.tables.map((t) => t.table.length));
      io.stdout.write(
        `copied ${sqlitePath} (schema version ${result.version}) into ${describeDatabaseUrl(url)}:\n`,
      );
      for (const t of result.tables) io.stdout.write(`  ${t.table.padEnd(width)}  ${t.rows} rows\n`);
      io.stdout.write(
        `Next: set store.kind: postgres in ${file} and start okome serve with OKOME_DATABASE_URL set. ` +
          'The SQLite file is left as it was.\n',
      );
      return ExitCode.Ok;
    } finally {
      await postgresLock.release();
    }
  } finally {
    await sqliteLock.release();
  }
}
