import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, type OkomeError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { IoRedisProbe } from '../../src/probes/redis-probe.js';
import { freePort } from '../support/launchers/free-port.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type RedisServer, startRedisServer } from '../support/launchers/redis-server.js';
import { waitFor } from '../support/slack-emulator/wait-for.js';

let redis: RedisServer;
let seed: Redis;

beforeAll(async () => {
  redis = await startRedisServer();
  seed = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await seed.connect();
});

afterAll(async () => {
  seed?.disconnect();
  await stopAllLaunched();
});

beforeEach(async () => {
  await seed.flushall();
});

async function rejection(promise: Promise<unknown>): Promise<OkomeError> {
  try {
    await promise;
  } catch (error) {
    return error as OkomeError;
  }
  throw new Error('expected a rejection');
}

/** A TCP server that counts connections; `hang` keeps them open in silence, otherwise closes at once. */
async function rawServer(
  mode: 'hang' | 'close',
): Promise<{ port: number; connections: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    if (mode === 'close') socket.destroy();
    else socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    connections: () => connections,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A probe logger that counts "redis connection ended": ioredis has given a connection up for
 * good. Waiting for it, not for a while, proves a reconnect would already have been decided.
 */
function endings(): { logger: Logger; ended: (n: number) => Promise<true> } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => lines.push(line) } });
  const count = () => lines.filter((l) => l.includes('"msg":"redis connection ended"')).length;
  return { logger, ended: (n) => waitFor(() => count() >= n, 5000, `${n} ended connection(s)`) };
}

describe('IoRedisProbe against a real redis-server', () => {
  const probeFor = (
    port = redis.port,
    extra: { password?: string; db?: number; logger?: Logger } = {},
  ): IoRedisProbe => new IoRedisProbe({ host: '127.0.0.1', port, ...extra });

  it('PINGs and reads keyspace hits and misses from INFO stats', async () => {
    const probe = probeFor();
    try {
      expect(await probe.ping(1000)).toBe('PONG');
      const before = await probe.infoStats(1000);
      await seed.set('okome:model_meta:m1', 'x');
      await seed.get('okome:model_meta:m1');
      await seed.get('okome:model_meta:m1');
      await seed.get('okome:model_meta:absent');
      const after = await probe.infoStats(1000);
      expect(after.keyspaceHits - before.keyspaceHits).toBe(2);
      expect(after.keyspaceMisses - before.keyspaceMisses).toBe(1);
    } finally {
      await probe.close();
    }
  });

  it('counts keys with SCAN over several cursor rounds', async () => {
    const pipeline = seed.pipeline();
    for (let i = 0; i < 2500; i++) pipeline.set(`okome:budget:rl:agent-${i}:100`, '1');
    for (let i = 0; i < 300; i++) pipeline.set(`okome:budget:writes:agent-${i}:100`, '1');
    for (let i = 0; i < 700; i++) pipeline.set(`okome:rag:repo:${i}`, 'x');
    await pipeline.exec();
    const probe = probeFor();
    try {
      expect(await probe.countKeys('okome:budget:*', 2000)).toBe(2800);
      expect(await probe.countKeys('okome:budget:rl:*', 2000)).toBe(2500);
      expect(await probe.countKeys('nothing:*', 2000)).toBe(0);
    } finally {
      await probe.close();
    }
  });

  it('reads the rl counters of one window, agents with colons included, across MGET batches', async () => {
    const pipeline = seed.pipeline();
    for (let i = 0; i < 1200; i++) pipeline.set(`okome:budget:rl:bulk-${i}:100`, String(i % 50));
    pipeline.set('okome:budget:rl:runaway:100', '61');
    pipeline.set('okome:budget:rl:team:bot:100', '60');
    pipeline.set('okome:budget:rl:runaway:99', '500');
    pipeline.set('okome:budget:rl:other:1100', '500');
    pipeline.set('okome:budget:rl:broken:100', 'not-a-number');
    await pipeline.exec();
    const probe = probeFor();
    try {
      const counters = await probe.rateLimitCounters(100, 3000);
      expect(counters).toHaveLength(1202);
      expect(counters.slice(0, 2)).toEqual([
        { key: 'okome:budget:rl:runaway:100', agent: 'runaway', window: 100, count: 61 },
        { key: 'okome:budget:rl:team:bot:100', agent: 'team:bot', window: 100, count: 60 },
      ]);
      expect(counters.find((c) => c.agent === 'bulk-49')?.count).toBe(49);
      expect(await probe.rateLimitCounters(7, 1000)).toEqual([]);
      expect((await rejection(probe.rateLimitCounters(1.5, 1000))).code).toBe(ErrorCode.Internal);
    } finally {
      await probe.close();
    }
  });

  it('FLUSHDB empties its own database only', async () => {
    await seed.set('okome:tools:v1', 'x');
    await seed.select(2);
    await seed.set('okome:tools:v1', 'x');
    const probe = probeFor(redis.port, { db: 2 });
    try {
      await probe.flushdb(1000);
      expect(await seed.dbsize()).toBe(0);
      await seed.select(0);
      expect(await seed.dbsize()).toBe(1);
    } finally {
      await seed.select(0);
      await probe.close();
    }
  });

  it('uses the password it is given, and reports its absence as a clear failure', async () => {
    const secured = await startRedisServer({ password: 'from-the-env' });
    const good = probeFor(secured.port, { password: 'from-the-env' });
    const bad = probeFor(secured.port);
    try {
      expect(await good.ping(1000)).toBe('PONG');
      const error = await rejection(bad.ping(1000));
      expect(error.code).toBe(ErrorCode.ProbeFailed);
      expect(error.message).toMatch(/NOAUTH/);
      expect(error.message).not.toContain('from-the-env');
    } finally {
      await good.close();
      await bad.close();
      await secured.stop();
    }
  });

  it('does not reconnect by itself after its connection is killed; the next call connects again', async () => {
    const { logger, ended } = endings();
    const probe = probeFor(redis.port, { logger });
    const clients = async (): Promise<number> =>
      String(await seed.client('LIST'))
        .trim()
        .split('\n').length;
    try {
      expect(await probe.ping(1000)).toBe('PONG');
      expect(await clients()).toBe(2);
      // Two filters at once: ioredis 6's typed client() overloads take one, call() takes any.
      await seed.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await ended(1);
      // Only the seeding client: the probe did not reconnect in the background.
      expect(await clients()).toBe(1);
      expect(await probe.ping(1000)).toBe('PONG');
      expect(await clients()).toBe(2);
    } finally {
      await probe.close();
    }
  });
});

describe('IoRedisProbe against broken servers: bounded, no reconnect loop', () => {
  it('refused: OKOME_PROBE_FAILED at once', async () => {
    const port = await freePort();
    const probe = new IoRedisProbe({ host: '127.0.0.1', port });
    try {
      const started = performance.now();
      const error = await rejection(probe.ping(1000));
      expect(error.code).toBe(ErrorCode.ProbeFailed);
      expect(error.message).toBe(`redis 127.0.0.1:${port}: PING: connection refused`);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await probe.close();
    }
  });

  it('hung (accepts, never answers): OKOME_PROBE_TIMEOUT at the deadline for every call; nothing after close', async () => {
    const server = await rawServer('hang');
    const { logger, ended } = endings();
    const probe = new IoRedisProbe({ host: '127.0.0.1', port: server.port, logger });
    try {
      for (const call of [
        () => probe.ping(300),
        () => probe.infoStats(300),
        () => probe.countKeys('okome:*', 300),
      ]) {
        const started = performance.now();
        const error = await rejection(call());
        const elapsed = performance.now() - started;
        expect(error.code).toBe(ErrorCode.ProbeTimeout);
        expect(error.message).toContain('timeout after 300 ms');
        expect(elapsed).toBeGreaterThanOrEqual(290);
        expect(elapsed).toBeLessThan(700);
      }
      // One connection per call, no background reconnects.
      expect(server.connections()).toBe(3);
      await probe.close();
      await ended(3);
      expect(server.connections()).toBe(3);
      expect((await rejection(probe.ping(300))).code).toBe(ErrorCode.Internal);
    } finally {
      await probe.close();
      await server.stop();
    }
  });

  it('drops connections at once: OKOME_PROBE_FAILED, and no reconnect attempts afterwards', async () => {
    const server = await rawServer('close');
    const { logger, ended } = endings();
    const probe = new IoRedisProbe({ host: '127.0.0.1', port: server.port, logger });
    try {
      const error = await rejection(probe.ping(1000));
      expect(error.code).toBe(ErrorCode.ProbeFailed);
      expect(error.message).toMatch(/connection closed|connection reset/);
      await ended(1);
      expect(server.connections()).toBe(1);
    } finally {
      await probe.close();
      await server.stop();
    }
  });
});
