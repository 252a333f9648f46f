import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { newApproval } from '../../src/domain/approval.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store-port.js';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/** `okome store migrate --to postgres`: every row of a used SQLite store, and the bot goes on from there. */

const database = await scratchPostgresDatabase('the store migrate tests');
let cfg: LoopbackConfig | undefined;

afterEach(() => {
  cfg?.cleanup();
  cfg = undefined;
});
afterAll(async () => {
  await database?.drop();
});

function approval(incidentId: number, id: string) {
  return newApproval({
    id,
    incidentId,
    actionId: 'restart-redis',
    targets: ['pi-b'],
    commands: [{ node: 'pi-b', command: 'sudo systemctl restart redis-server' }],
    requiredApprovals: 1,
    requester: 'U0REQUEST',
    now: 2000,
    ttlMs: 60_000,
  });
}

/** A store as a bot leaves it: incidents open and resolved, a thread, undelivered messages, approvals, audit, alerts, silences. */
async function useStore(store: Store): Promise<void> {
  const { incident: one } = await store.openOrReuseIncident({
    key: '2:pi-b',
    number: '2',
    title: 'Redis down on pi-b',
    channel: 'C0INCIDENT',
    requester: 'U0REQUEST',
    now: 1000,
  });
  const { incident: two } = await store.openOrReuseIncident({
    key: '1:pi-a',
    number: '1',
    title: 'nginx down on pi-a',
    channel: 'C0INCIDENT',
    requester: 'alertmanager',
    now: 1100,
  });
  await store.resolveIncident(two.id, 1900, 'resolved by its alert');
  const root = await store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 1000 });
  await store.setIncidentRootRef(one.id, root);
  const reply = await store.createMessage({ channel: 'C0INCIDENT', threadRef: root, now: 1001 });
  const posted = await store.insertOutbox({
    channel: 'C0INCIDENT',
    queueKey: 'C0INCIDENT',
    op: 'post',
    messageRef: root,
    threadRef: null,
    user: null,
    payload: JSON.stringify({ text: 'Incident 2: Redis down on pi-b' }),
    now: 1000,
  });
  await store.markPosted(posted, '1700000000.000100', 1002);
  await store.insertOutbox({
    channel: 'C0INCIDENT',
    queueKey: `C0INCIDENT:${root}`,
    op: 'post',
    messageRef: reply,
    threadRef: root,
    user: null,
    payload: JSON.stringify({ text: 'still pending: "quotes", <!channel> & ünïcode' }),
    now: 1003,
  });
  await store.appendTimeline({
    incidentId: one.id,
    at: 1000,
    kind: 'diagnosis',
    text: 'redis inactive',
    data: { n: 1 },
  });
  await store.appendTimeline({ incidentId: one.id, at: 1005, kind: 'notice', text: 'no data' });
  await store.markSeen('envelope:abc', 1000);
  const first = approval(one.id, 'ap_first');
  const second = approval(one.id, 'ap_second');
  await store.insertApproval(first);
  await store.insertApproval(second);
  await store.setApprovalCardRef(first.id, reply);
  await store.compareAndSetApproval(
    { ...second, state: 'rejected', version: second.version + 1 },
    second.version,
  );
  for (const [at, event] of [
    [2001, 'offered'],
    [2002, 'clicked'],
  ] as const) {
    await store.appendAudit({
      at,
      approvalId: first.id,
      incidentId: one.id,
      actionId: 'restart-redis',
      actor: 'U0APPROVE',
      event,
      verdict: 'allowed',
      code: 'ok',
      reason: 'test',
      stateBefore: 'pending',
      stateAfter: 'pending',
      targets: ['pi-b'],
      commands: ['sudo systemctl restart redis-server'],
    });
  }
  await store.recordAlert({
    incidentId: one.id,
    fingerprint: 'c0ffee01',
    alertname: 'RedisDown',
    node: 'pi-b',
    status: 'firing',
    at: 1000,
  });
  await store.touchAlert(one.id, 'c0ffee01', 1500);
  await store.setSummaryRef(one.id, root);
  await store.requestAlertFollowUp(one.id, true, 1600);
  await store.addToInbox('alertmanager', { alerts: [1, 2] }, 1700);
  await store.setVipHolder('pi-b', 1700, 'pi-b/VI_1');
  await store.setWatchedVipHolder(null, 1750);
  await store.insertSilence({
    incidentId: one.id,
    silenceId: 'silence-1',
    matchers: [{ name: 'alertname', value: 'RedisDown', isRegex: false, isEqual: true }],
    createdBy: 'U0APPROVE',
    createdByName: 'Approver One',
    startsAt: 1800,
    endsAt: 1800 + 3_600_000,
  });
}

const TABLES_KEYS: Record<string, string> = {
  approvals: 'id',
  seen_events: 'key',
  messages: 'ref',
  incident_alerts: 'incident_id, fingerprint',
  incident_summaries: 'incident_id',
  alert_followups: 'incident_id',
  leader_lease: 'name',
  channel_pacing: 'channel',
  vip_holder: 'kind',
};

/** Every table's rows, in key order, values as the SQLite store holds them. */
async function dump(read: (sql: string) => Promise<Record<string, unknown>[]>, tables: readonly string[]) {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const table of tables) {
    const rows = await read(`SELECT * FROM ${table} ORDER BY ${TABLES_KEYS[table] ?? 'id'}`);
    out[table] = rows.map((row) =>
      Object.fromEntries(
        Object.entries(row)
          .filter(([column]) => !(table === 'approvals' && column === 'rowid'))
          .map(([column, value]) => [column, typeof value === 'bigint' ? Number(value) : value]),
      ),
    );
  }
  return out;
}

function run(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  return runCli(args, {
    env,
    cwd: process.cwd(),
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  }).then((code) => ({ code, stdout, stderr }));
}

describe.skipIf(database === undefined)('okome store migrate --to postgres', () => {
  const url = database?.url ?? '';
  let pool: pg.Pool;
  beforeAll(() => {
    // BIGINT as numbers, as the store reads them.
    pool = new pg.Pool({
      connectionString: url,
      types: {
        getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)),
      } as pg.CustomTypesConfig,
    });
  });
  afterAll(async () => {
    // The database is dropped WITH (FORCE) next: a connection still closing hears of it.
    pool.on('error', () => {});
    await pool.end();
  });
  afterEach(async () => {
    await pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  });

  it('copies every row of every table; the bot goes on from there (ids, order, outbox)', async () => {
    cfg = await loopbackConfig();
    const sqlitePath = resolve(cfg.dir, 'okome.db');
    const sqlite = openSqliteStore({ path: sqlitePath });
    await useStore(sqlite);
    const pendingBefore = (await sqlite.pendingHeads()).map((r) => r.payload);
    await sqlite.close();

    const result = await run(['store', 'migrate', '--to', 'postgres', '--config', cfg.path], {
      OKOME_DATABASE_URL: url,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('approvals');
    expect(result.stdout).toMatch(/audit\s+2 rows/);

    const db = new Database(sqlitePath, { readonly: true });
    const tables = (
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'",
        )
        .all() as { name: string }[]
    ).map((r) => r.name);
    const fromSqlite = await dump(async (sql) => db.prepare(sql).all() as Record<string, unknown>[], tables);
    db.close();
    const fromPostgres = await dump(async (sql) => (await pool.query(sql)).rows, tables);
    expect(tables.length).toBeGreaterThanOrEqual(12);
    for (const table of tables) expect(fromPostgres[table], table).toEqual(fromSqlite[table]);
    for (const table of [
      'incidents',
      'messages',
      'outbox',
      'approvals',
      'audit',
      'incident_alerts',
      'alert_silences',
    ])
      expect(fromSqlite[table]?.length, table).toBeGreaterThan(0);

    // The bot on PostgreSQL sees the same state and numbers new rows after the copied ones.
    const store = await openPostgresStore({ url });
    try {
      expect((await store.openIncidents()).map((i) => i.title)).toEqual(['Redis down on pi-b']);
      expect((await store.pendingHeads()).map((r) => r.payload)).toEqual(pendingBefore);
      expect((await store.approvalsInStates(['pending', 'rejected'])).map((a) => a.id)).toEqual([
        'ap_first',
        'ap_second',
      ]);
      const maxIncident = Math.max(...(fromSqlite.incidents ?? []).map((r) => Number(r.id)));
      const { incident } = await store.openOrReuseIncident({
        key: '6:pi-b',
        number: '6',
        title: 'miss storm',
        channel: 'C0INCIDENT',
        requester: 'U1',
        now: 5000,
      });
      expect(incident.id).toBeGreaterThan(maxIncident);
      const maxSeq = Math.max(...(fromSqlite.outbox ?? []).map((r) => Number(r.seq)));
      const id = await store.insertOutbox({
        channel: 'C0OPS',
        queueKey: 'C0OPS',
        op: 'post',
        messageRef: await store.createMessage({ channel: 'C0OPS', threadRef: null, now: 5000 }),
        threadRef: null,
        user: null,
        payload: '{}',
        now: 5000,
      });
      const seq = (await pool.query<{ seq: number }>('SELECT seq FROM outbox WHERE id = $1', [id])).rows[0]
        ?.seq;
      expect(seq).toBeGreaterThan(maxSeq);
      // The audit stays append-only on its new home.
      await expect(pool.query('DELETE FROM audit')).rejects.toThrow(/append-only/);
    } finally {
      await store.close();
    }

    // A second copy into a database that holds rows is refused, and changes nothing.
    const again = await run(['store', 'migrate', '--to', 'postgres', '--config', cfg.path], {
      OKOME_DATABASE_URL: url,
    });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds rows in \w+: okome copies only into an empty database/);
    expect((await pool.query('SELECT count(*)::int AS n FROM incidents')).rows[0]?.n).toBe(3);
  });

  it('refuses while a bot serves the SQLite store, and says what to do without --to or OKOME_DATABASE_URL', async () => {
    cfg = await loopbackConfig();
    const sqlitePath = resolve(cfg.dir, 'okome.db');
    const sqlite = openSqliteStore({ path: sqlitePath });
    await sqlite.close();
    // The serve lock is per process (fcntl): hold it from another one, as a serving bot does.
    const holder = join(cfg.dir, 'hold-lock.mjs');
    writeFileSync(
      holder,
      `import { fileServeLock } from ${JSON.stringify(resolve('src/store/serve-lock.ts'))};
       // Kept reachable: a collected lock closes its database, and the lock goes with it.
       globalThis.okomeLock = fileServeLock(${JSON.stringify(sqlitePath)});
       await globalThis.okomeLock.acquire();
       process.stdout.write('held\\n');
       setInterval(() => {}, 1000);`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', holder], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((done, fail) => {
        child.stdout.once('data', () => done());
        child.once('exit', (code) => fail(new Error(`lock holder exited (${String(code)})`)));
      });
      const refused = await run(['store', 'migrate', '--to', 'postgres', '--config', cfg.path], {
        OKOME_DATABASE_URL: url,
      });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('OKOME_SERVE_LOCK_HELD');
      expect((await pool.query("SELECT to_regclass('incidents')::text AS t")).rows[0]?.t ?? null).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }

    const noTarget = await run(['store', 'migrate', '--config', cfg.path], { OKOME_DATABASE_URL: url });
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('needs --to postgres');
    const noUrl = await run(['store', 'migrate', '--to', 'postgres', '--config', cfg.path], {});
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain('OKOME_DATABASE_URL is not set');
  });
});
