import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { parseCount, parseRateLimitKey, parseRedisInfoStats } from '../domain/parse/index.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { describeNetworkError } from './deadline.js';
import type { RateLimitCounter, RedisProbe, RedisStats } from './ports.js';

export interface RedisProbeOptions {
  readonly host: string;
  readonly port: number;
  readonly db?: number;
  /** From the environment (REDIS_PASSWORD), never from the configuration file. */
  readonly password?: string;
  /** TCP connect deadline; each call's own timeout still bounds the whole call. Default 1500 ms. */
  readonly connectTimeoutMs?: number;
  /** Backstop for a single command; each call's own timeout applies first. Default 5000 ms. */
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
}

const RL_PREFIX = 'okome:budget:rl:';
const SCAN_COUNT = 1000;
const MGET_BATCH = 500;

// The parsing is the domain's (src/domain/parse): one parser per output, tested on real output.

// --- the probe ----------------------------------------------------------------------------

class DeadlineExceeded extends Error {}

/**
 * RedisProbe over ioredis with no hidden retries: one lazy connection, no offline queue, no
 * reconnect loop (a failed or timed-out connection is dropped; the next call opens a new one),
 * every call bounded by its own timeout.
 */
export class IoRedisProbe implements RedisProbe {
  private client: Redis | undefined;
  private connecting: Promise<Redis> | undefined;
  private closed = false;
  private readonly log: Logger | undefined;
  private readonly where: string;

  constructor(private readonly options: RedisProbeOptions) {
    this.log = options.logger?.child({ component: 'redis-probe' });
    this.where = `redis ${options.host}:${options.port}`;
  }

  ping(timeoutMs: number): Promise<string> {
    return this.call('PING', timeoutMs, (client) => client.ping());
  }

  infoStats(timeoutMs: number): Promise<RedisStats> {
    return this.call('INFO stats', timeoutMs, async (client) => {
      // Both sections in one round trip; `INFO server stats` would need Redis 7.
      const [serverInfo, statsInfo] = await Promise.all([client.info('server'), client.info('stats')]);
      const parsed = parseRedisInfoStats(`${serverInfo}\r\n${statsInfo}`);
      const stats =
        parsed.kind === 'stats'
          ? {
              keyspaceHits: parsed.keyspaceHits,
              keyspaceMisses: parsed.keyspaceMisses,
              runId: parsed.runId ?? undefined,
            }
          : undefined;
      if (stats === undefined) {
        throw new OkomeError(
          ErrorCode.ProbeFailed,
          `${this.where}: INFO stats has no keyspace_hits/keyspace_misses`,
          {
            userSafe: true,
          },
        );
      }
      return stats;
    });
  }

  countKeys(pattern: string, timeoutMs: number): Promise<number> {
    return this.call(
      'SCAN',
      timeoutMs,
      async (client, expired) => (await this.scan(client, pattern, expired)).size,
    );
  }

  rateLimitCounters(window: number, timeoutMs: number): Promise<readonly RateLimitCounter[]> {
    if (!Number.isSafeInteger(window) || window < 0) {
      return Promise.reject(
        new OkomeError(ErrorCode.Internal, `rate-limit window must be a whole number, got ${window}`),
      );
    }
    return this.call('SCAN+MGET', timeoutMs, async (client, expired) => {
      const keys = [...(await this.scan(client, `${RL_PREFIX}*:${window}`, expired))];
      const counters: RateLimitCounter[] = [];
      for (let i = 0; i < keys.length && !expired(); i += MGET_BATCH) {
        const batch = keys.slice(i, i + MGET_BATCH);
        const values = await client.mget(batch);
        batch.forEach((key, j) => {
          const parsedKey = parseRateLimitKey(key);
          const agent = parsedKey?.window === window && parsedKey.agent !== '' ? parsedKey.agent : undefined;
          const raw = values[j] ?? null;
          const count = raw === null ? null : parseCount(raw);
          if (agent !== undefined && count !== null) counters.push({ key, agent, window, count });
        });
      }
      return counters.sort((a, b) => b.count - a.count || a.agent.localeCompare(b.agent));
    });
  }

  flushdb(timeoutMs: number): Promise<void> {
    return this.call('FLUSHDB', timeoutMs, async (client) => {
      await client.flushdb();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.drop();
  }

  /** SCAN (never KEYS: it blocks Redis) until the cursor returns to 0; keys de-duplicated. */
  private async scan(client: Redis, pattern: string, expired: () => boolean): Promise<Set<string>> {
    const keys = new Set<string>();
    let cursor = '0';
    do {
      // The call already failed at its deadline: stop sending SCANs nobody will read.
      if (expired()) break;
      const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      for (const key of batch) keys.add(key);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }

  private async call<T>(
    what: string,
    timeoutMs: number,
    work: (client: Redis, expired: () => boolean) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new OkomeError(ErrorCode.Internal, `${this.where}: the probe is closed`);
    const deadline = performance.now() + timeoutMs;
    const expired = (): boolean => performance.now() >= deadline;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), timeoutMs);
    });
    const running = this.connected().then((client) => work(client, expired));
    try {
      return await Promise.race([running, timeout]);
    } catch (error) {
      running.catch(() => undefined);
      throw this.failure(what, timeoutMs, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private failure(what: string, timeoutMs: number, error: unknown): OkomeError {
    if (error instanceof OkomeError) return error;
    // A server error reply (NOAUTH, WRONGTYPE…) leaves the connection usable.
    if (error instanceof Error && error.name === 'ReplyError') {
      return new OkomeError(ErrorCode.ProbeFailed, `${this.where}: ${what}: ${error.message}`, {
        userSafe: true,
        cause: error,
      });
    }
    // Anything else may leave a half-dead connection or a pending reply: start afresh next call.
    this.drop();
    const message = error instanceof Error ? error.message : String(error);
    const timedOut =
      error instanceof DeadlineExceeded ||
      message === 'Command timed out' ||
      (error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    const reason = timedOut
      ? `timeout after ${timeoutMs} ms`
      : /Connection is closed|Stream isn't writeable/.test(message)
        ? 'connection closed'
        : describeNetworkError(error);
    this.log?.debug({ what, reason }, 'redis probe failed');
    return new OkomeError(
      timedOut ? ErrorCode.ProbeTimeout : ErrorCode.ProbeFailed,
      `${this.where}: ${what}: ${reason}`,
      {
        userSafe: true,
        cause: error,
      },
    );
  }

  /** The ready client, connecting when needed; concurrent calls share one connect. */
  private connected(): Promise<Redis> {
    const current = this.client;
    if (current !== undefined && current.status === 'ready') return Promise.resolve(current);
    if (this.connecting !== undefined) return this.connecting;
    this.drop();
    const { options } = this;
    const client = new Redis({
      host: options.host,
      port: options.port,
      db: options.db ?? 0,
      ...(options.password === undefined ? {} : { password: options.password }),
      // RESP2, as with ioredis 5: RESP3 (ioredis 6's default) opens with HELLO, which a
      // least-privilege ACL (+ping +info +scan +mget) refuses, failing the connection.
      protocol: 2,
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 1500,
      commandTimeout: options.commandTimeoutMs ?? 5000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // Give up instead of reconnecting forever; the next call opens a fresh connection.
      retryStrategy: () => null,
      reconnectOnError: () => false,
      autoResubscribe: false,
      // A dropped connection is cut at once: ioredis's default waits 2 s for a polite close,
      // which kept a finished `okome status` alive that long after its report.
      disconnectTimeout: 0,
    });
    // Without a listener ioredis prints "Unhandled error event" to the console. The event also
    // carries the real cause (refused, NOAUTH…) where connect() only says "Connection is closed".
    let cause: Error | undefined;
    client.on('error', (error: Error) => {
      cause ??= error;
      this.log?.debug({ err: error.message }, 'redis connection error');
    });
    // 'end' means ioredis has given up on this connection for good: no reconnect follows.
    client.on('end', () => this.log?.debug('redis connection ended'));
    this.client = client;
    const connecting = client.connect().then(
      () => client,
      (error: unknown) => {
        if (this.client === client) this.drop();
        throw cause ?? error;
      },
    );
    this.connecting = connecting;
    const clear = (): void => {
      if (this.connecting === connecting) this.connecting = undefined;
    };
    connecting.then(clear, clear);
    return connecting;
  }

  private drop(): void {
    const client = this.client;
    this.client = undefined;
    this.connecting = undefined;
    client?.disconnect(false);
  }
}
