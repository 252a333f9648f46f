import { dirname, isAbsolute, resolve } from 'node:path';
import { ErrorCode, OkomeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Leadership } from './leadership.js';
import { postgresLeadership, replicaName } from './postgres-leader.js';
import { type PostgresServeLock, postgresServeLock } from './postgres-serve-lock.js';
import { describeDatabaseUrl, openPostgresStore } from './postgres-store.js';
import { fileServeLock, type ServeLock } from './serve-lock.js';
import { openSqliteStore } from './sqlite-store.js';
import type { Store } from './store-port.js';

/** The store the configuration names, resolved against the config file and the environment. */
export interface StoreTarget {
  /** For logs and messages: a path, or the URL without its password. */
  readonly where: string;
  serveLock(): ServeLock;
  /**
   * Replicas (store.replicas, PostgreSQL): this process's replica name and its leader election;
   * undefined for one bot per store (the serve lock, and it is always the leader).
   */
  replicas(logger?: Logger): { name: string; leadership: Leadership; outboxLeaseMs: number } | undefined;
  /** Read-only: for CLI readers beside a serving bot (no create, no migration, no writes). */
  open(options?: { readOnly?: boolean; connectTimeoutMs?: number }): Promise<Store>;
}

export function storeTarget(
  store: {
    readonly kind: 'sqlite' | 'postgres';
    readonly path: string;
    readonly replicas?: boolean;
    readonly outboxLeaseMs?: number;
  },
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
    const replicas = store.replicas === true;
    let lock: PostgresServeLock | undefined;
    return {
      where: describeDatabaseUrl(url),
      // Replicas share the lock (and elect a leader for the singletons); one bot holds it alone.
      serveLock: () => {
        lock = postgresServeLock(url, { shared: replicas });
        return lock;
      },
      replicas: (logger) => {
        if (!replicas) return undefined;
        const name = replicaName();
        return {
          name,
          outboxLeaseMs: store.outboxLeaseMs ?? 30_000,
          leadership: postgresLeadership({ url, holder: name, ...(logger === undefined ? {} : { logger }) }),
        };
      },
      open: (options = {}) => {
        const ownServeBackend = lock?.backendPid();
        return openPostgresStore({
          url,
          readOnly: options.readOnly === true,
          // Opened by a serving bot: its migration must not run under other replicas' feet.
          ...(ownServeBackend === undefined ? {} : { ownServeBackend }),
          ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
        });
      },
    };
  }
  const path = isAbsolute(store.path) ? store.path : resolve(dirname(context.configFile), store.path);
  return {
    where: path,
    serveLock: () => fileServeLock(path),
    replicas: () => undefined,
    open: async (options = {}) => openSqliteStore({ path, readOnly: options.readOnly === true }),
  };
}
