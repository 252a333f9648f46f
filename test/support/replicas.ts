import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { type LoopbackConfig, loopbackConfig } from './bot-harness.js';
import { freePort } from './launchers/free-port.js';
import { type SlackEmulator, waitFor } from './slack-emulator/index.js';

/**
 * Replicas as operators run them (issue 21): `okome serve` processes from source on one
 * PostgreSQL with `store.replicas`, each with an HTTP port of its own (the webhooks and
 * /readyz), all on one Slack app (the emulator's Socket Mode connections).
 */

const ROOT = join(import.meta.dirname, '../..');

/** Log lines whose first appearance a replica records (performance.now()). */
const WATCHED = ['elected leader', 'okome serving'];

export interface Replica {
  readonly child: ChildProcess;
  /** Its webhooks and /readyz: `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  output(): string;
  /** When (performance.now()) a line containing `pattern` first appeared; undefined before. */
  seen(pattern: string): number | undefined;
  /** Whether the leader lease `holder` names this process. */
  holds(holder: string): boolean;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

export interface ReplicaSet {
  readonly replicas: readonly Replica[];
  readonly config: LoopbackConfig;
  /** Every replica logged "okome serving" (their output in the error otherwise). */
  serving(timeoutMs?: number): Promise<void>;
  /** The replica the live lease names, once there is one. */
  leader(timeoutMs?: number): Promise<{ replica: Replica; token: number }>;
  /** SIGKILLs what is left and removes the configuration. */
  stop(): Promise<void>;
}

export interface ReplicaSetOptions {
  readonly count: number;
  readonly databaseUrl: string;
  readonly emu: SlackEmulator;
  /** OKOME_ALERTMANAGER_TOKEN (the webhook is disabled without one). */
  readonly alertmanagerToken?: string;
  /** Edits the shared configuration (store.kind/replicas are set already). */
  readonly edit?: (doc: Record<string, unknown>) => void;
  /** More environment for every replica (e.g. OKOME_KEEPALIVED_SECRET). */
  readonly env?: NodeJS.ProcessEnv;
}

function spawnReplica(configPath: string, port: number, env: NodeJS.ProcessEnv): Replica {
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
  let output = '';
  const firstSeen = new Map<string, number>();
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const w of WATCHED) if (!firstSeen.has(w) && output.includes(w)) firstSeen.set(w, performance.now());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    seen: (p) => firstSeen.get(p),
    holds: (holder) => holder.startsWith(`${child.pid}@`),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
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

/** The live leader lease (name 'singletons'), timed by the database's clock as the replicas time it. */
export async function leaseRow(url: string): Promise<{ holder: string; token: number } | undefined> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{ holder: string; token: string }>(
      "SELECT holder, token FROM leader_lease WHERE name = 'singletons' AND lease_until > (extract(epoch from clock_timestamp()) * 1000)::bigint",
    );
    const row = r.rows[0];
    return row === undefined ? undefined : { holder: row.holder, token: Number(row.token) };
  } finally {
    await client.end();
  }
}

/**
 * One loopback configuration with `store.replicas`, written once per replica with its own HTTP
 * port (what differs between the hosts of a real deployment).
 */
export async function replicaConfigs(
  count: number,
  edit: (doc: Record<string, unknown>) => void = () => {},
): Promise<{ config: LoopbackConfig; replicas: { path: string; port: number }[] }> {
  const config = await loopbackConfig((doc) => {
    doc.store = { kind: 'postgres', replicas: true };
    edit(doc);
  });
  try {
    const replicas: { path: string; port: number }[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const doc = parse(readFileSync(config.path, 'utf8')) as Record<string, unknown>;
      doc.http = { ...(doc.http as Record<string, unknown>), port };
      const path = join(config.dir, `replica-${i}.yml`);
      writeFileSync(path, stringify(doc));
      replicas.push({ path, port });
    }
    return { config, replicas };
  } catch (error) {
    config.cleanup();
    throw error;
  }
}

export async function startReplicaSet(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const { config, replicas: configs } = await replicaConfigs(options.count, options.edit);
  const env: NodeJS.ProcessEnv = {
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_APP_TOKEN: 'xapp-test',
    SLACK_API_URL: options.emu.apiUrl,
    OKOME_DATABASE_URL: options.databaseUrl,
    ...(options.alertmanagerToken === undefined
      ? {}
      : { OKOME_ALERTMANAGER_TOKEN: options.alertmanagerToken }),
    ...options.env,
  };
  const replicas = configs.map(({ path, port }) => spawnReplica(path, port, env));
  return {
    replicas,
    config,
    async serving(timeoutMs = 60_000) {
      await waitFor(
        () => replicas.every((r) => r.output().includes('okome serving')),
        timeoutMs,
        `${replicas.length} replicas serving`,
        100,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${replicas.map((r) => r.output()).join('\n---\n')}`);
      });
    },
    async leader(timeoutMs = 10_000) {
      const row = await waitFor(() => leaseRow(options.databaseUrl), timeoutMs, 'a leader', 50);
      const replica = replicas.find((r) => r.holds(row.holder));
      if (replica === undefined) throw new Error(`the lease names ${row.holder}, none of the replicas`);
      return { replica, token: row.token };
    },
    async stop() {
      for (const r of replicas) await r.kill();
      config.cleanup();
    },
  };
}
