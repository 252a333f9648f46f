import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from '../logger.js';
import type { LeaderEvents, Leadership } from './leadership.js';

/** The lease row the singletons' leader holds (leader_lease.name). */
export const SINGLETONS_LEASE = 'singletons';

/** The database's clock in epoch ms: every replica measures the lease on the same clock. */
export const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

export interface PostgresLeadershipOptions {
  readonly url: string;
  /** Names this process in the lease row (default `pid@host/random`). */
  readonly holder?: string;
  /** How long a term lasts without a renewal (default 3000 ms): a killed leader is replaced after it. */
  readonly ttlMs?: number;
  /** How often the leader renews (default 1000 ms). */
  readonly renewMs?: number;
  /** How often a follower tries to take an expired lease (default 500 ms). */
  readonly campaignMs?: number;
  /**
   * The leader stops its singletons this long before its lease could lapse in the database
   * (default 500 ms), measured from when it sent its last successful renewal.
   */
  readonly marginMs?: number;
  readonly logger?: Logger;
}

/** A unique name for this process's replica: pid, host and a random part (a PID may be reused). */
export function replicaName(): string {
  return `${process.pid}@${hostname()}/${randomBytes(3).toString('hex')}`;
}

/**
 * Leader election among replicas on one PostgreSQL: a lease row with a fencing token, on a
 * connection of its own (a busy pool never starves the heartbeat). A follower takes the lease
 * once it has lapsed, which bumps the token; the leader renews it. Lease times are the
 * database's clock, so skewed hosts agree on when a lease lapsed.
 *
 * Safety: the leader deposes itself (stops its singletons) `marginMs` before the lease could
 * lapse in the database, counted from when it sent its last renewal, so a leader cut off from
 * PostgreSQL stops before anyone else may start. And every store write of a singleton runs in
 * `store.fenced`, which re-checks the token in the same transaction (and locks the row, so a
 * new leader cannot take it until that transaction ends): a paused leader that wakes up late
 * cannot write as the leader.
 */
export function postgresLeadership(options: PostgresLeadershipOptions): Leadership {
  const ttlMs = options.ttlMs ?? 3000;
  const renewMs = options.renewMs ?? 1000;
  const campaignMs = options.campaignMs ?? 500;
  const marginMs = options.marginMs ?? 500;
  const holder = options.holder ?? replicaName();
  const log = options.logger?.child({ component: 'leader', holder });
  let client: pg.Client | undefined;
  let events: LeaderEvents | undefined;
  let running = false;
  let token: number | undefined;
  /** Monotonic ms until which this leader may act (sent-at of its last renewal + ttl − margin). */
  let validUntil = 0;
  let timer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  /** Elections and depositions, one after the other. */
  let transition: Promise<void> = Promise.resolve();

  const connection = async (): Promise<pg.Client> => {
    if (client !== undefined) return client;
    const c = new pg.Client({
      connectionString: options.url,
      application_name: `okome leader ${holder}`.slice(0, 63),
      connectionTimeoutMillis: ttlMs,
      // A hung renewal must not outlive the term it renews.
      query_timeout: ttlMs,
    });
    c.on('error', () => {
      if (client === c) client = undefined;
      void c.end().catch(() => {});
    });
    await c.connect();
    client = c;
    return c;
  };

  const dropConnection = () => {
    const c = client;
    client = undefined;
    void c?.end().catch(() => {});
  };

  const schedule = (ms: number) => {
    clearTimeout(timer);
    if (running) timer = setTimeout(() => void tick(), ms);
  };

  const depose = (reason: string): Promise<void> => {
    if (token === undefined) return transition;
    const term = token;
    token = undefined;
    clearTimeout(watchdog);
    log?.warn({ term, reason }, 'no longer the leader: stopping the singletons');
    const e = events;
    transition = transition.then(() => e?.deposed(reason)).catch(() => {});
    return transition;
  };

  const elect = (term: number, sentAt: number) => {
    token = term;
    extend(sentAt);
    log?.info({ term }, 'elected leader: starting the singletons');
    const e = events;
    transition = transition
      .then(() => (token === term ? e?.elected(term) : undefined))
      .catch((error: unknown) => log?.error({ err: error }, 'starting the singletons failed'));
  };

  const extend = (sentAt: number) => {
    validUntil = sentAt + ttlMs - marginMs;
    clearTimeout(watchdog);
    watchdog = setTimeout(() => void depose('lease not renewed in time'), validUntil - performance.now());
  };

  const tick = async (): Promise<void> => {
    if (!running) return;
    // A deposition still stopping the singletons: no new term before it ends. (A leader never
    // waits here: its renewals must not wait for its singletons to start.)
    if (token === undefined) await transition;
    if (!running) return;
    const sentAt = performance.now();
    try {
      const c = await connection();
      if (token === undefined) {
        const got = await c.query<{ token: number }>(
          `INSERT INTO leader_lease AS l (name, holder, token, lease_until)
           VALUES ($1, $2, 1, ${DB_NOW_MS} + $3)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = l.token + 1,
             lease_until = excluded.lease_until
           WHERE l.lease_until <= ${DB_NOW_MS}
           RETURNING token::float8 AS token`,
          [SINGLETONS_LEASE, holder, ttlMs],
        );
        const won = got.rows[0]?.token;
        if (won !== undefined && running) elect(won, sentAt);
      } else {
        const term = token;
        const kept = await c.query(
          `UPDATE leader_lease SET lease_until = ${DB_NOW_MS} + $3
           WHERE name = $1 AND holder = $2 AND token = $4 AND lease_until > ${DB_NOW_MS}`,
          [SINGLETONS_LEASE, holder, ttlMs, term],
        );
        if (token === term) {
          if (kept.rowCount === 1) extend(sentAt);
          else await depose('the lease was taken over');
        }
      }
    } catch (error) {
      // The watchdog deposes a leader that cannot renew in time; a follower just tries again.
      log?.warn({ err: error }, 'leader lease: cannot reach PostgreSQL');
      dropConnection();
    }
    schedule(token === undefined ? campaignMs : renewMs);
  };

  return {
    start(e) {
      if (running) return;
      events = e;
      running = true;
      schedule(0);
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      const term = token;
      await depose('stopping');
      await transition;
      if (term !== undefined) {
        // Handed over at once: the next leader need not wait the lease out.
        await client
          ?.query('UPDATE leader_lease SET lease_until = 0 WHERE name = $1 AND token = $2', [
            SINGLETONS_LEASE,
            term,
          ])
          .catch(() => {});
      }
      dropConnection();
    },
    term: () => (token !== undefined && performance.now() < validUntil ? token : undefined),
  };
}
