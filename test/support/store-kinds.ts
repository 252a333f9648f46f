import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store-port.js';

/**
 * The stores the contract tests run against. PostgreSQL is the machine's server (override with
 * OKOME_TEST_POSTGRES_URL): each test file creates a database of its own with a random name and
 * drops it at the end; nothing else on the server is touched.
 */
export type StoreKindName = 'sqlite' | 'postgres';

/** One test's empty store, and ways to reach the same data around the store. */
export interface StoreUnderTest {
  readonly kind: StoreKindName;
  /** Another store on the same data (a second pool / connection, as a second process has). */
  open(): Promise<Store>;
  /** SQL on a raw connection of its own, outside the store (rows it returns). */
  raw(sql: string): Promise<Record<string, unknown>[]>;
  /** An ES module snippet for a child process that binds `store` to the same data. */
  readonly childOpen: string;
}

const adminUrl = process.env.OKOME_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function postgresUnavailable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL is not reachable at ${adminUrl} (${error instanceof Error ? error.message : String(error)}); start it or set OKOME_TEST_POSTGRES_URL`;
  } finally {
    await client.end().catch(() => {});
  }
}

const pgUnavailable = await postgresUnavailable();

interface Harness {
  setup(): Promise<void>;
  fresh(): Promise<StoreUnderTest>;
  teardown(): Promise<void>;
}

function sqliteHarness(): Harness {
  let dir = '';
  let n = 0;
  return {
    async setup() {
      dir = mkdtempSync(join(tmpdir(), 'okome-contract-'));
    },
    async fresh() {
      const path = join(dir, `okome-${++n}.db`);
      return {
        kind: 'sqlite',
        open: async () => openSqliteStore({ path }),
        raw: async (sql) => {
          const db = new Database(path);
          try {
            const statement = db.prepare(sql);
            if (statement.reader) return statement.all() as Record<string, unknown>[];
            statement.run();
            return [];
          } finally {
            db.close();
          }
        },
        childOpen: `import { openSqliteStore } from ${JSON.stringify(resolve('src/store/sqlite-store.ts'))};
          const store = openSqliteStore({ path: ${JSON.stringify(path)} });`,
      };
    },
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresHarness(): Harness {
  const database = `okome_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>, target = adminUrl): Promise<T> => {
    const client = new pg.Client({ connectionString: target });
    client.on('error', () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    async setup() {
      await admin((c) => c.query(`CREATE DATABASE ${database}`));
    },
    async fresh() {
      // Every store of the previous test is closed: start from an empty schema.
      await admin((c) => c.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'), url.toString());
      return {
        kind: 'postgres',
        open: () => openPostgresStore({ url: url.toString() }),
        raw: (sql) => admin(async (c) => (await c.query(sql)).rows, url.toString()),
        childOpen: `import { openPostgresStore } from ${JSON.stringify(resolve('src/store/postgres-store.ts'))};
          const store = await openPostgresStore({ url: ${JSON.stringify(url.toString())} });`,
      };
    },
    async teardown() {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    },
  };
}

/**
 * A PostgreSQL database of its own for a test file that needs one outside the contract suite:
 * `undefined` with the reason logged when the server is unreachable (a failure under
 * OKOME_REQUIRE_LAB=1, as for the contract suites).
 */
export async function scratchPostgresDatabase(
  what: string,
): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  if (pgUnavailable !== undefined) {
    const message = `${what} did not run: ${pgUnavailable}`;
    if (process.env.OKOME_REQUIRE_LAB === '1') throw new Error(message);
    console.warn(`${message} (set OKOME_REQUIRE_LAB=1 to make this a failure)`);
    return undefined;
  }
  const database = `okome_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${database}`);
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`) };
}

const kinds: readonly { name: StoreKindName; unavailable: string | undefined; harness: () => Harness }[] = [
  { name: 'sqlite', unavailable: undefined, harness: sqliteHarness },
  { name: 'postgres', unavailable: pgUnavailable, harness: postgresHarness },
];

/**
 * The same tests against every store (describe.each). `current()` is the test's empty store and
 * its surroundings; `store()` the store opened on it (closed after the test). A store whose
 * server is unreachable is skipped with the reason; with OKOME_REQUIRE_LAB=1 (CI) that fails.
 */
export function describeStoreContract(
  name: string,
  body: (t: {
    kind: StoreKindName;
    current: () => StoreUnderTest;
    store: () => Store;
    reopen: () => Promise<Store>;
  }) => void,
): void {
  describe.each(kinds)(`${name} ($name)`, ({ name: kind, unavailable, harness }) => {
    if (unavailable !== undefined) {
      const message = `the ${kind} contract suite "${name}" did not run: ${unavailable}`;
      if (process.env.OKOME_REQUIRE_LAB === '1') {
        it(`runs because OKOME_REQUIRE_LAB=1 requires ${kind}`, () => {
          throw new Error(message);
        });
        return;
      }
      console.warn(`${message} (set OKOME_REQUIRE_LAB=1 to make this a failure)`);
    }
    describe.skipIf(unavailable !== undefined)(`on ${kind}`, () => {
      const h = harness();
      let under: StoreUnderTest | undefined;
      let store: Store | undefined;
      beforeAll(() => h.setup());
      afterAll(() => h.teardown());
      beforeEach(async () => {
        under = await h.fresh();
        store = await under.open();
      });
      afterEach(async () => {
        await store?.close();
        store = undefined;
      });
      const need = <T>(value: T | undefined): T => {
        if (value === undefined) throw new Error('no store: used outside a test');
        return value;
      };
      body({
        kind,
        current: () => need(under),
        store: () => need(store),
        reopen: async () => {
          await store?.close();
          store = await need(under).open();
          return store;
        },
      });
    });
  });
}
