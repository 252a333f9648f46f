import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import type { Leadership } from '../../src/store/leadership.js';
import { postgresLeadership } from '../../src/store/postgres-leader.js';
import { postgresServeLock } from '../../src/store/postgres-serve-lock.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres-store.js';
import { waitFor } from '../support/slack-emulator/index.js';
import { scratchPostgresDatabase } from '../support/store-kinds.js';

/**
 * Leader election among replicas on one PostgreSQL (issue 21 point 2), in one process with a
 * connection per candidate as separate processes have: one leader at a time, a handover when it
 * stops, a takeover when its lease lapses, and fencing: a deposed leader's writes are refused.
 */

const db = await scratchPostgresDatabase('the leader election tests');
let store: PostgresStore | undefined;
const campaigns: Leadership[] = [];

beforeAll(async () => {
  if (db !== undefined) store = await openPostgresStore({ url: db.url });
});
afterEach(async () => {
  await Promise.all(campaigns.splice(0).map((c) => c.stop()));
  await raw('DELETE FROM leader_lease');
});
afterAll(async () => {
  await store?.close();
  await db?.drop();
});

/** SQL on a connection of its own, to the test's database (or to the server's `postgres` one). */
async function raw(
  sql: string,
  params: unknown[] = [],
  where?: 'server',
): Promise<Record<string, unknown>[]> {
  if (db === undefined) return [];
  const url = new URL(db.url);
  if (where === 'server') url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A candidate that records when it leads: `leading` is true between elected and deposed. */
function candidate(name: string, log: string[], overlap: { now: number; max: number }) {
  if (db === undefined) throw new Error('no database');
  const state = { leading: false, terms: [] as number[] };
  const leadership = postgresLeadership({
    url: db.url,
    holder: name,
    ttlMs: 1500,
    renewMs: 300,
    campaignMs: 100,
    marginMs: 300,
  });
  leadership.start({
    elected: async (token) => {
      overlap.now += 1;
      overlap.max = Math.max(overlap.max, overlap.now);
      state.leading = true;
      state.terms.push(token);
      log.push(`${name} elected ${token}`);
    },
    deposed: async (reason) => {
      overlap.now -= 1;
      state.leading = false;
      log.push(`${name} deposed: ${reason}`);
    },
  });
  campaigns.push(leadership);
  return { name, state, leadership };
}

describe.skipIf(db === undefined)('leader election on PostgreSQL', () => {
  it('elects one of three, hands over on stop, and never has two leaders at once', async () => {
    const log: string[] = [];
    const overlap = { now: 0, max: 0 };
    const all = ['a', 'b', 'c'].map((n) => candidate(n, log, overlap));
    const first = await waitFor(() => all.find((c) => c.state.leading), 5000, 'a leader');
    // Several renewals later, still the same single leader.
    await new Promise((r) => setTimeout(r, 1000));
    expect(all.filter((c) => c.state.leading).map((c) => c.name)).toEqual([first.name]);
    const stoppedAt = performance.now();
    await first.leadership.stop();
    const second = await waitFor(
      () => all.find((c) => c !== first && c.state.leading),
      5000,
      'the next leader',
    );
    // A stop hands the lease over at once: no lease to wait out.
    expect(performance.now() - stoppedAt).toBeLessThan(1000);
    expect(second.state.terms[0]).toBeGreaterThan(first.state.terms[0] ?? 0);
    expect(overlap.max).toBe(1);
    expect(log.filter((l) => l.includes('elected'))).toHaveLength(2);
  });

  it('takes over a lease that lapsed, and fences the old term: its writes are refused, its renewal deposes it', async () => {
    if (store === undefined) throw new Error('no store');
    const log: string[] = [];
    const overlap = { now: 0, max: 0 };
    const a = candidate('a', log, overlap);
    await waitFor(() => a.state.leading, 5000, 'a to lead');
    const oldTerm = a.state.terms[0] ?? 0;
    const s = store;
    // A fenced write in the term succeeds.
    await s.fenced(oldTerm, () => s.markSeen('leader-test:in-term', 1));
    // The lease lapses as if A had hung past it (a long GC pause, a cut network), and B takes it.
    await raw("UPDATE leader_lease SET lease_until = 0 WHERE name = 'singletons'");
    const b = candidate('b', log, overlap);
    await waitFor(() => b.state.leading, 5000, 'b to take the lapsed lease');
    const newTerm = b.state.terms[0] ?? 0;
    expect(newTerm).toBe(oldTerm + 1);
    // A's late write, as a singleton of the old term: refused, nothing of it committed.
    const refused = await s
      .fenced(oldTerm, () =>
        s.atomically(async () => {
          await s.markSeen('leader-test:late', 2);
          return 'committed';
        }),
      )
      .catch((e: unknown) => e);
    expect(isOkomeError(refused, ErrorCode.NotLeader)).toBe(true);
    expect(await raw("SELECT key FROM seen_events WHERE key LIKE 'leader-test:%' ORDER BY key")).toEqual([
      { key: 'leader-test:in-term' },
    ]);
    // A single statement outside a transaction is fenced too.
    const alone = await s.fenced(oldTerm, () => s.markSeen('leader-test:alone', 3)).catch((e: unknown) => e);
    expect(isOkomeError(alone, ErrorCode.NotLeader)).toBe(true);
    // A's next renewal finds the lease taken: A stops its singletons.
    await waitFor(() => !a.state.leading, 3000, 'a deposed');
    expect(log).toContain('a deposed: the lease was taken over');
    expect(b.state.leading).toBe(true);
    await s.fenced(newTerm, () => s.markSeen('leader-test:new-term', 4));
  });

  it('deposes a leader that cannot reach PostgreSQL before its lease lapses in the database', async () => {
    const log: string[] = [];
    const overlap = { now: 0, max: 0 };
    const a = candidate('a', log, overlap);
    await waitFor(() => a.state.leading, 5000, 'a to lead');
    // Cut A's lease connection and keep it from reconnecting: the server refuses A's backend.
    const name = new URL(db?.url ?? 'postgres://x/none').pathname.slice(1);
    await raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`, [], 'server');
    try {
      await raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'okome leader a%'",
        [],
        'server',
      );
      const cutAt = performance.now();
      await waitFor(() => !a.state.leading, 3000, 'a deposed without its database');
      // Deposed within its term (1500 ms): before any other replica could take over.
      expect(performance.now() - cutAt).toBeLessThan(1500);
      expect(log.at(-1)).toBe('a deposed: lease not renewed in time');
    } finally {
      await raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`, [], 'server');
    }
  });

  it('lets replicas share the serve lock, and keeps a bot without replicas out of it (and the other way round)', async () => {
    if (db === undefined) return;
    const url = db.url;
    const replicas = [1, 2, 3].map((pid) => postgresServeLock(url, { shared: true, pid, host: 'pi-bot' }));
    const alone = postgresServeLock(url, { pid: 9, host: 'pi-bot' });
    try {
      for (const r of replicas) await r.acquire();
      const refused = await alone.acquire().catch((e: unknown) => e);
      expect(isOkomeError(refused, ErrorCode.ServeLockHeld)).toBe(true);
      expect((refused as Error).message).toMatch(
        /okome serve \d+@pi-bot.*unless every bot sets store.replicas/,
      );
      for (const r of replicas) await r.release();
      await alone.acquire();
      const replica = postgresServeLock(url, { shared: true });
      const kept = await replica.acquire().catch((e: unknown) => e);
      expect(isOkomeError(kept, ErrorCode.ServeLockHeld)).toBe(true);
      expect((kept as Error).message).toContain('okome serve 9@pi-bot');
      expect((kept as Error).message).toContain('without store.replicas');
    } finally {
      await Promise.all([...replicas, alone].map((l) => l.release()));
    }
  });
});
