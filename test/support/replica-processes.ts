import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';

/**
 * `okome serve` replicas as real processes (issue 21): each started from source with the
 * caller's environment only (no SLACK_/OKOME_ variables of the test's own), its log kept.
 */

const ROOT = join(import.meta.dirname, '../..');

export interface Replica {
  readonly child: ChildProcess;
  output(): string;
  /** When (performance.now()) a line containing `pattern` first appeared; undefined before. */
  seen(pattern: string): number | undefined;
  /** The HTTP port it said it listens on ('okome ready'), once it did. */
  httpPort(): number | undefined;
}

/** Lines whose first appearance is timed (Replica.seen). */
const WATCHED = ['elected leader', 'okome serving'];

/** Starts one replica; `children` collects it for the caller's cleanup (SIGKILL). */
export function serveReplica(configPath: string, env: NodeJS.ProcessEnv, children: ChildProcess[]): Replica {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SLACK_') && !k.startsWith('OKOME_')),
  );
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/okome.ts', 'serve', '--config', configPath],
    {
      cwd: ROOT,
      env: { ...clean, OKOME_LOG_LEVEL: 'info', OKOME_LOG_FORMAT: 'json', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let output = '';
  let port: number | undefined;
  const firstSeen = new Map<string, number>();
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const w of WATCHED) if (!firstSeen.has(w) && output.includes(w)) firstSeen.set(w, performance.now());
    if (port === undefined) {
      const line = output.split('\n').find((l) => l.includes('"okome ready"'));
      if (line !== undefined) port = (JSON.parse(line) as { port?: number }).port;
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return { child, output: () => output, seen: (p) => firstSeen.get(p), httpPort: () => port };
}

/** A query on a connection of its own (outside the replicas), for what they left in the store. */
export async function queryOnce<R extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** The singletons' lease while it runs: who leads, in which term. */
export async function leaseRow(url: string): Promise<{ holder: string; token: number } | undefined> {
  const [row] = await queryOnce<{ holder: string; token: string }>(
    url,
    "SELECT holder, token FROM leader_lease WHERE name = 'singletons' AND lease_until > (extract(epoch from clock_timestamp()) * 1000)::bigint",
  );
  return row === undefined ? undefined : { holder: row.holder, token: Number(row.token) };
}

/** The replica the lease names (its holder is `<pid>@<host>…`). */
export function replicaNamed(replicas: readonly Replica[], holder: string): Replica | undefined {
  return replicas.find((r) => holder.startsWith(`${r.child.pid}@`));
}
