/**
 * node-postgres (`pg`, the store's driver) vs `postgres` (porsager), side by side in one run on
 * the machine's PostgreSQL (127.0.0.1, a database of its own, dropped after): the store's three
 * shapes of work — a point read, reads from many callers at once (a burst of clicks or alerts),
 * and a write transaction under the store's advisory write lock. Rounds alternate the drivers so
 * drift of a noisy machine hits both alike; the figure is each driver's median round.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import postgres from 'postgres';

const ADMIN_URL = process.env.OKOME_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROUNDS = 5;
const READS = 1000;
const PARALLEL_READS = 2000;
const CALLERS = 20;
const WRITES = 300;

interface Driver {
  readonly name: string;
  read(key: string): Promise<unknown>;
  write(key: string, at: number): Promise<void>;
  end(): Promise<void>;
}

function nodePostgres(url: string): Driver {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => {});
  return {
    name: 'pg',
    read: async (key) => (await pool.query('SELECT * FROM things WHERE key = $1', [key])).rows[0],
    write: async (key, at) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(1, 3)');
        await client.query('INSERT INTO things (key, at, body) VALUES ($1, $2, $3)', [key, at, '{}']);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    end: () => pool.end(),
  };
}

function porsager(url: string): Driver {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  return {
    name: 'postgres',
    read: async (key) => (await sql`SELECT * FROM things WHERE key = ${key}`)[0],
    write: async (key, at) => {
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(1, 3)`;
        await tx`INSERT INTO things (key, at, body) VALUES (${key}, ${at}, '{}')`;
      });
    },
    end: () => sql.end({ timeout: 1 }),
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const WORKLOADS = {
  /** Sequential point reads: one caller's latency per query. */
  sequentialReadUs: async (d: Driver) =>
    ((await timed(async () => {
      for (let i = 0; i < READS; i++) await d.read(`k${i % 100}`);
    })) *
      1000) /
    READS,
  /** Point reads from 20 callers at once through the pool: throughput under a burst. */
  parallelReadUs: async (d: Driver) =>
    ((await timed(async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CALLERS }, async () => {
          while (next < PARALLEL_READS) await d.read(`k${next++ % 100}`);
        }),
      );
    })) *
      1000) /
    PARALLEL_READS,
  /** Write transactions as the store runs them: BEGIN, advisory write lock, INSERT, COMMIT. */
  writeTransactionUs: async (d: Driver) => {
    const tag = randomBytes(3).toString('hex');
    return (
      ((await timed(async () => {
        for (let i = 0; i < WRITES; i++) await d.write(`${d.name}-${tag}-${i}`, i);
      })) *
        1000) /
      WRITES
    );
  },
} as const;

export type PgDriverFigures = Record<
  keyof typeof WORKLOADS,
  { pg: number; postgres: number; pgOverPostgres: number }
> & {
  readonly rounds: number;
};

export async function pgDriverBench(): Promise<PgDriverFigures | { skipped: string }> {
  const database = `okome_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  admin.on('error', () => {});
  try {
    await admin.connect();
  } catch (error) {
    return { skipped: `needs PostgreSQL at ${new URL(ADMIN_URL).host}: ${(error as Error).message}` };
  }
  await admin.query(`CREATE DATABASE ${database}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  const drivers = [nodePostgres(url.toString()), porsager(url.toString())];
  try {
    const setup = new pg.Client({ connectionString: url.toString() });
    await setup.connect();
    await setup.query('CREATE TABLE things (key TEXT PRIMARY KEY, at BIGINT NOT NULL, body TEXT NOT NULL)');
    await setup.query(
      "INSERT INTO things SELECT 'k' || g, g, repeat('x', 200) FROM generate_series(0, 99) AS g",
    );
    await setup.end();
    // Warm both: connections opened, statements seen once.
    for (const d of drivers) await WORKLOADS.parallelReadUs(d);
    const samples = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [workload, run] of Object.entries(WORKLOADS)) {
        const order = round % 2 === 0 ? drivers : [...drivers].reverse();
        for (const d of order) {
          const key = `${workload}:${d.name}`;
          samples.set(key, [...(samples.get(key) ?? []), await run(d)]);
        }
      }
    }
    const figure = (workload: string) => {
      const a = median(samples.get(`${workload}:pg`) ?? []);
      const b = median(samples.get(`${workload}:postgres`) ?? []);
      return { pg: Math.round(a), postgres: Math.round(b), pgOverPostgres: Math.round((a / b) * 100) / 100 };
    };
    return {
      rounds: ROUNDS,
      sequentialReadUs: figure('sequentialReadUs'),
      parallelReadUs: figure('parallelReadUs'),
      writeTransactionUs: figure('writeTransactionUs'),
    };
  } finally {
    for (const d of drivers) await d.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}
