import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './free-port.js';
import { ManagedDaemon, retryOnAddressInUse } from './process-utils.js';

/** Debian's `prometheus-alertmanager`. */
export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

/** Why Alertmanager tests cannot run here, or undefined when they can. */
export function alertmanagerUnavailable(): string | undefined {
  return existsSync(ALERTMANAGER_BIN)
    ? undefined
    : `${ALERTMANAGER_BIN} is missing (apt-get install prometheus-alertmanager)`;
}

export interface AlertmanagerServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Stops the process, keeps its storage (silences survive a `start()`). */
  kill(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface AlertmanagerOptions {
  /** Where its one receiver posts (the bot's webhook), with this bearer token. */
  readonly webhook: { readonly url: string; readonly token: string };
  /** Take this port (the bot's configuration names it before Alertmanager starts). */
  readonly port?: number;
  readonly readyTimeoutMs?: number;
}

const HOST = '127.0.0.1';

async function ready(url: string): Promise<boolean> {
  const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
  await r.body?.cancel();
  return r.ok;
}

/**
 * A throw-away Alertmanager on 127.0.0.1 (no cluster, its own storage and config in a temp
 * directory) routing every alert at once to one webhook. Never the system's daemon.
 */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<AlertmanagerServer> {
  const dir = await mkdtemp(join(tmpdir(), 'okome-alertmanager-'));
  const managed = new ManagedDaemon('alertmanager', dir, join(dir, 'alertmanager.log'));
  const config = join(dir, 'alertmanager.yml');
  await writeFile(
    config,
    stringify({
      route: {
        receiver: 'okome',
        group_by: ['alertname'],
        group_wait: '0s',
        group_interval: '1s',
        repeat_interval: '1h',
      },
      receivers: [
        {
          name: 'okome',
          webhook_configs: [
            {
              url: options.webhook.url,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials: options.webhook.token } },
            },
          ],
        },
      ],
    }),
  );
  let port = options.port;
  const launch = async (attempt: number) => {
    const chosen = attempt === 1 && port !== undefined ? port : await freePort(HOST);
    const url = `http://${HOST}:${chosen}`;
    await managed.start(
      ALERTMANAGER_BIN,
      [
        `--config.file=${config}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=${HOST}:${chosen}`,
        '--cluster.listen-address=',
        '--log.level=info',
      ],
      () => ready(url),
      options.readyTimeoutMs ?? 15_000,
    );
    port = chosen;
  };
  try {
    // A port named by the caller must be the one used: no retry elsewhere.
    await retryOnAddressInUse(launch, options.port === undefined ? 3 : 1);
  } catch (error) {
    await managed.stop();
    throw error;
  }
  const bound = port as number;
  return {
    url: `http://${HOST}:${bound}`,
    port: bound,
    dir,
    kill: () => managed.kill(),
    start: () => launch(1),
    stop: () => managed.stop(),
  };
}
