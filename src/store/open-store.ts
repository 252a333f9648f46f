import { dirname, isAbsolute, resolve } from 'node:path';
import { ErrorCode, OkomeError } from '../errors.js';
import { postgresServeLock } from './postgres-serve-lock.js';
import { describeDatabaseUrl, openPostgresStore } from './postgres-store.js';
import { fileServeLock, type ServeLock } from './serve-lock.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store-port.js';

/** The store the configuration names, resolved against the config file and the environment. */
export interface StoreTarget {
  /** For logs and messages: a path, or the URL without its password. */
  readonly where: string;
  serveLock(): ServeLock;
  /** Read-only: for CLI readers beside a serving bot (no create, no migration, no writes). */
  open(options?: { readOnly?: boolean; connectTimeoutMs?: number }): Promise<Store>;
}

export function storeTarget(
  store: { readonly kind: 'sqlite' | 'postgres'; readonly path: string },
  context: { readonly configFile: string; readonly databaseUrl: string | undefined },
): StoreTarget {
  if (store.kind === 'postgres') {
    const url = context.databaseUrl;
    if (url === undefined) {
      throw new OkomeError(
        ErrorCode.EnvInvalid,
        'store.kind is postgres but OKOME_DATABASE_URL is not set. To resolve, set it to ' +
          'postgres://user@host:5432/database (the password in PGPASSWORD or in the URL, never in the config file).',
        { userSafe: true },
      );
    }
    return {
      where: describeDatabaseUrl(url),
      serveLock: () => postgresServeLock(url),
      open: (options = {}) =>
        openPostgresStore({
          url,
          readOnly: options.readOnly === true,
          ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
        }),
    };
  }
  const path = isAbsolute(store.path) ? store.path : resolve(dirname(context.configFile), store.path);
  return {
    where: path,
    serveLock: () => fileServeLock(path),
    open: async (options = {}) => openSqliteStore({ path, readOnly: options.readOnly === true }),
  };
}
