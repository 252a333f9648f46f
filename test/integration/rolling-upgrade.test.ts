import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { storeTarget } from '../../src/store/open-store.js';
import { postgresSchemaVersion } from '../../src/store/postgres-migrate.js';
import { postgresServeLock } from '../../src/store/postgres-serve-lock.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * A rolling upgrade of replicas (issue 21 point 2): a new version beside old ones is safe when
 * the schema is unchanged, and refused clearly, changing nothing, when it would migrate the
 * database under replicas that still write the old schema. Through storeTarget, the code path
 * `okome serve` takes (serve lock first, then open and migrate).
 */

const db = await scratchPostgresDatabase('the rolling upgrade test');
// Another okome's database on the same server: its replicas are not this database's.
const neighbour = await scratchPostgresDatabase('the rolling upgrade test');
afterAll(async () => {
  await db?.drop();
  await neighbour?.drop();
});

const OLD = MIGRATIONS.slice(0, -1);

async function version(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await postgresSchemaVersion(client);
  } finally {
    await client.end();
  }
}

async function reset(url: string, migrations: readonly string[] | typeof MIGRATIONS): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  await client.end();
  await (await openPostgresStore({ url, migrations })).close();
}

function newReplica(url: string) {
  const target = storeTarget(
    { kind: 'postgres', path: 'unused', replicas: true },
    { configFile: '/nonexistent/okome.yml', databaseUrl: url },
  );
  return { target, lock: target.serveLock() };
}

describe.skipIf(db === undefined)('a rolling upgrade of replicas on PostgreSQL', () => {
  it('refuses to migrate while a replica of the old version serves, names it, and changes nothing', async () => {
    if (db === undefined) return;
    await reset(db.url, OLD);
    const old = postgresServeLock(db.url, { shared: true, pid: 77, host: 'pi-old' });
    await old.acquire();
    const fresh = newReplica(db.url);
    try {
      await fresh.lock.acquire();
      const refused = await fresh.target.open().catch((e: unknown) => e);
      expect(isOkomeError(refused, ErrorCode.StoreUpgradeRefused), String(refused)).toBe(true);
      const message = (refused as Error).message;
      expect(message).toContain(
        `needs schema version ${MIGRATIONS.length}, the database is at ${OLD.length}`,
      );
      expect(message).toContain('okome serve 77@pi-old');
      expect(message).toContain('stop every replica, start one of this version (it migrates)');
      expect(await version(db.url)).toBe(OLD.length);
      // Once the old replica has stopped, the same start migrates.
      await old.release();
      const store = await fresh.target.open();
      await store.close();
      expect(await version(db.url)).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all([old.release(), fresh.lock.release()]);
    }
  });

  it('lets a new version start beside the old one when no migration is due (replica by replica)', async () => {
    if (db === undefined) return;
    await reset(db.url, MIGRATIONS);
    const old = postgresServeLock(db.url, { shared: true, pid: 78, host: 'pi-old' });
    await old.acquire();
    const fresh = newReplica(db.url);
    try {
      await fresh.lock.acquire();
      const store = await fresh.target.open();
      await store.close();
      expect(await version(db.url)).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all([old.release(), fresh.lock.release()]);
    }
  });

  it('refuses an old version on a schema a newer one migrated (it cannot know the new columns)', async () => {
    if (db === undefined) return;
    await reset(db.url, MIGRATIONS);
    const refused = await openPostgresStore({ url: db.url, migrations: OLD }).catch((e: unknown) => e);
    expect(isOkomeError(refused, ErrorCode.StoreSchemaTooNew), String(refused)).toBe(true);
    expect((refused as Error).message).toContain(`at schema version ${MIGRATIONS.length}`);
  });

  it('migrates a database only this replica serves, whatever serves other databases on the server', async () => {
    if (db === undefined || neighbour === undefined) return;
    await reset(db.url, OLD);
    const elsewhere = postgresServeLock(neighbour.url, { shared: true, pid: 79, host: 'pi-other' });
    await elsewhere.acquire();
    const fresh = newReplica(db.url);
    try {
      await fresh.lock.acquire();
      await (await fresh.target.open()).close();
      expect(await version(db.url)).toBe(MIGRATIONS.length);
    } finally {
      await Promise.all([fresh.lock.release(), elsewhere.release()]);
    }
  });
});
