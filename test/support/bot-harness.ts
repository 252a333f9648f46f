import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { HookSecrets } from '../../src/alerts/keepalived-hook.js';
import { type AppDeps, createApp, type RunningApp } from '../../src/app.js';
import { type LoadedConfig, loadConfig } from '../../src/config/load-config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { Clock } from '../../src/outbox/clock.js';
import { createProbes } from '../../src/probes/create-probes.js';
import { postgresLeadership } from '../../src/store/postgres-leader.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store-port.js';
import { type SlackEmulator, startSlackEmulator } from './slack-emulator/index.js';

/**
 * A configuration for in-process bot tests: the example's shape, every address on loopback
 * (127.0.0.18–25) and every port closed, so diagnoses finish fast with honest "refused" results.
 */
export interface LoopbackConfig {
  readonly dir: string;
  readonly path: string;
  readonly config: LoadedConfig;
  cleanup(): void;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 1;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const EXAMPLE = join(import.meta.dirname, '../../config/okome.example.yml');

export async function loopbackConfig(
  overrides: (doc: Record<string, unknown>) => void = () => {},
): Promise<LoopbackConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'okome-bot-test-'));
  const key = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const port = await closedPort();
  const doc = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown> & {
    nodes: Array<Record<string, unknown> & { ssh: Record<string, unknown> }>;
  };
  const [a, b] = doc.nodes;
  if (a === undefined || b === undefined) throw new Error('the example config lost its nodes');
  for (const [node, address] of [
    [a, '127.0.0.20'],
    [b, '127.0.0.19'],
  ] as const) {
    node.address = address;
    node.httpPort = port;
    node.ssh.port = port;
    node.ssh.privateKeyPath = key;
  }
  doc.vip = { address: '127.0.0.18', httpPort: port };
  doc.orchestrator = { baseUrl: `http://127.0.0.25:${port}` };
  doc.redis = { host: '127.0.0.19', port };
  doc.slack = {
    incidentChannel: 'C0INCIDENT',
    allowedChannels: ['C0OPS', 'C0INCIDENT'],
    approvers: { users: ['U0APPROVER1', 'U0APPROVER2'] },
  };
  doc.store = { path: join(dir, 'okome.db') };
  doc.http = { port: 0, host: '127.0.0.1' };
  doc.timeouts = {
    statusMs: 3000,
    checkMs: 1500,
    httpMs: 500,
    redisMs: 500,
    sshConnectMs: 1000,
    sshExecMs: 1000,
  };
  overrides(doc);
  const path = join(dir, 'okome.yml');
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  writeFileSync(path, stringify(doc));
  try {
    return { dir, path, config: loadConfig(path), cleanup };
  } catch (error) {
    // A test whose overrides make the configuration invalid must not leave its folder behind.
    cleanup();
    throw error;
  }
}

/**
 * pi-b's HTTP port answering 200 on its loopback address, for tests that need incidents from a
 * loopback configuration: with every address closed the bot reaches nothing, which is isolation
 * (no incident) by design. Pass `override` to loopbackConfig.
 */
export async function answeringPiHttp(): Promise<{
  readonly override: (doc: Record<string, unknown>) => void;
  close(): Promise<void>;
}> {
  const server = createHttpServer((_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.19', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 1;
  return {
    override: (doc) => {
      const piB = (doc.nodes as Array<Record<string, unknown>> | undefined)?.[1];
      if (piB === undefined) throw new Error('the example config lost pi-b');
      piB.httpPort = port;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Every store call waits for the next turn of the event loop first, as a call to a database
 * over the network does: work that only interleaves at I/O (two webhooks, two diagnoses) does.
 */
export function withStoreLatency(store: Store): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await new Promise((resolve) => setImmediate(resolve));
        return value.apply(target, args);
      };
    },
  });
}

/** The bot in-process (createApp) against an emulator, as the serve command would build it. */
export async function startInProcessBot(
  config: LoadedConfig,
  emulator: { readonly apiUrl: string },
  options: {
    mode?: 'socket' | 'http';
    redisSampleIntervalMs?: number;
    /** Another store (a fault-injecting wrapper); default the configured SQLite file. */
    store?: Store;
    webhooks?: { alertmanagerToken?: string; keepalivedSecrets?: HookSecrets };
    logger?: Logger;
    slackAuthProbeMs?: number;
    metricsToken?: string;
    /** Wraps the store, e.g. with latency (a networked store yields to the event loop per call). */
    wrapStore?: (store: Store) => Store;
    /** The app's clock and timers (the dead-man's switch), e.g. a manual clock. */
    clock?: Clock;
    /** Replicas on one PostgreSQL: this app's replica name and leader election. */
    replica?: AppDeps['replica'];
  } = {},
): Promise<RunningApp> {
  const store = options.store ?? openSqliteStore({ path: config.store.path });
  return createApp({
    ...(options.webhooks === undefined
      ? {}
      : {
          webhooks: {
            alertmanagerToken: options.webhooks.alertmanagerToken,
            keepalivedSecrets: options.webhooks.keepalivedSecrets ?? {
              shared: undefined,
              perNode: new Map(),
            },
          },
        }),
    ...(options.metricsToken === undefined ? {} : { metricsToken: options.metricsToken }),
    config,
    slack:
      options.mode === 'http'
        ? { kind: 'http', botToken: 'xoxb-test', signingSecret: 'testsecret123' }
        : { kind: 'socket', botToken: 'xoxb-test', appToken: 'xapp-test' },
    slackApiUrl: emulator.apiUrl,
    store: options.wrapStore?.(store) ?? store,
    probes: createProbes(config, { redisPassword: undefined }),
    logger: options.logger ?? createLogger({ level: 'silent' }),
    redisSampleIntervalMs: options.redisSampleIntervalMs ?? 50,
    ...(options.clock === undefined
      ? {}
      : {
          now: () => options.clock?.now() ?? Date.now(),
          schedule: options.clock.schedule.bind(options.clock),
        }),
    ...(options.slackAuthProbeMs === undefined ? {} : { slackAuthProbeMs: options.slackAuthProbeMs }),
    ...(options.replica === undefined ? {} : { replica: options.replica }),
  });
}

/**
 * Replicas in-process (issue 21): `count` apps on one PostgreSQL, each with a pool of its own,
 * its own leader campaign (replica `app0`, `app1`…) and its own Socket Mode connection.
 */
export async function startInProcessReplicas(
  config: LoadedConfig,
  emulator: { readonly apiUrl: string },
  databaseUrl: string,
  count: number,
  options: Omit<Parameters<typeof startInProcessBot>[2], 'store' | 'replica'> = {},
): Promise<RunningApp[]> {
  const apps: RunningApp[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `app${i}`;
      apps.push(
        await startInProcessBot(config, emulator, {
          ...options,
          store: await openPostgresStore({ url: databaseUrl }),
          replica: { name, leadership: postgresLeadership({ url: databaseUrl, holder: name }) },
        }),
      );
    }
  } catch (error) {
    // The ones already up would outlive the test.
    for (const app of apps) await app.stop({ graceMs: 500 }).catch(() => {});
    throw error;
  }
  return apps;
}

/**
 * The in-process bot with a diagnosis that offers a card: a healthy orchestrator (golden rule 1
 * does not hold the Redis action back), pi-b answering HTTP and Redis closed (incident 2 with
 * "Restart redis-server on pi-b"). `edit` changes the configuration further.
 */
export async function startCardBot(
  edit: (doc: Record<string, unknown>) => void = () => {},
  options: {
    /** The app's clock (e.g. one a test moves ahead: a recovery span without waiting it out). */
    clock?: Clock;
  } = {},
): Promise<{
  emu: SlackEmulator;
  app: RunningApp;
  cfg: LoopbackConfig;
  close(): Promise<void>;
}> {
  const orchestrator = createHttpServer((_req, res) => res.writeHead(200).end('ok'));
  await new Promise<void>((r) => orchestrator.listen(0, '127.0.0.1', r));
  const port = (orchestrator.address() as AddressInfo).port;
  const emu = await startSlackEmulator();
  const piHttp = await answeringPiHttp();
  const cfg = await loopbackConfig((doc) => {
    piHttp.override(doc);
    doc.orchestrator = { baseUrl: `http://127.0.0.1:${port}` };
    edit(doc);
  });
  const app = await startInProcessBot(
    cfg.config,
    emu,
    options.clock === undefined ? {} : { clock: options.clock },
  );
  return {
    emu,
    app,
    cfg,
    async close() {
      await app.stop({ graceMs: 1000 });
      await emu.close();
      await new Promise((r) => orchestrator.close(r));
      await piHttp.close();
      cfg.cleanup();
    },
  };
}
