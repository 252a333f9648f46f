import type { LoadedConfig } from '../config/load-config.js';
import type { Logger } from '../logger.js';
import { UndiciHttpProbe } from './http-probe.js';
import type { HttpProbe, NodeShell, RedisProbe } from './ports.js';
import { IoRedisProbe } from './redis-probe.js';
import { SshPool, type SshTarget } from './ssh-pool.js';

export interface Probes {
  readonly shell: NodeShell;
  readonly http: HttpProbe;
  readonly redis: RedisProbe;
  /** The SSH pool's figures for /metrics; absent with a shell that is not a pool. */
  readonly ssh?: {
    openConnections(): number;
    handshakes(): number;
    execCounts(): ReadonlyMap<string, number>;
  };
  close(): Promise<void>;
}

/** The real adapters for a configuration: one SSH pool, one HTTP agent, one Redis client. */
export function createProbes(
  config: LoadedConfig,
  options: { redisPassword: string | undefined; logger?: Logger },
): Probes {
  const t = config.timeouts;
  const targets = new Map<string, SshTarget>(config.nodes.map((n) => [n.name, n]));
  const shell = new SshPool(targets, {
    connectTimeoutMs: t.sshConnectMs,
    maxOutputBytes: t.maxOutputBytes,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const http = new UndiciHttpProbe({
    connectTimeoutMs: t.httpMs,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const redis = new IoRedisProbe({
    host: config.redis.host,
    port: config.redis.port,
    db: config.redis.db,
    connectTimeoutMs: t.redisMs,
    ...(options.redisPassword === undefined ? {} : { password: options.redisPassword }),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return {
    shell,
    http,
    redis,
    ssh: shell,
    close: async () => {
      await Promise.allSettled([shell.close(), http.close(), redis.close()]);
    },
  };
}
