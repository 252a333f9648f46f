import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSampleFile } from '../../src/diagnostics/redis-sample-file.js';
import { RedisWindow } from '../../src/diagnostics/redis-window.js';
import { IoRedisProbe } from '../../src/probes/redis-probe.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type RedisServer, startRedisServer } from '../support/launchers/redis-server.js';

/**
 * The last Redis INFO sample kept in its file: a one-shot run (a new RedisWindow, as a new CLI
 * process makes) starts its hit-ratio window there instead of waiting for a second sample.
 */

let redis: RedisServer;
let seed: Redis;
let probe: IoRedisProbe;
let dir: string;
const signal = new AbortController().signal;

beforeAll(async () => {
  redis = await startRedisServer();
  seed = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await seed.connect();
  await seed.set('present', 'v');
  probe = new IoRedisProbe({ host: redis.host, port: redis.port, db: 0, connectTimeoutMs: 1000 });
  dir = mkdtempSync(join(tmpdir(), 'okome-redis-sample-'));
});

afterAll(async () => {
  seed?.disconnect();
  await probe?.close();
  rmSync(dir, { recursive: true, force: true });
  await stopAllLaunched();
});

async function lookups(hits: number, misses: number): Promise<void> {
  for (let i = 0; i < hits; i += 1) await seed.get('present');
  for (let i = 0; i < misses; i += 1) await seed.get('absent');
}

/** One run's window, as a new process makes it: the clock and its waits are the test's. */
function oneRun(file: string, clock: { t: number }) {
  const waits: number[] = [];
  const window = new RedisWindow({
    maxAgeMs: 60_000,
    intervalMs: 1000,
    minLookups: 20,
    now: () => clock.t,
    sleep: async (ms) => {
      waits.push(ms);
      clock.t += ms;
    },
    kept: new RedisSampleFile(file),
  });
  return { waits, ratio: () => window.ratio(() => probe.infoStats(1000), signal) };
}

describe('the kept Redis sample', () => {
  it('INFO samples carry the server run_id', async () => {
    expect((await probe.infoStats(1000)).runId).toMatch(/^[0-9a-f]{40}$/);
  });

  it('only a first-ever run waits; the next run starts at the kept sample and says so', async () => {
    const file = join(dir, 'first.json');
    const clock = { t: 1_700_000_000_000 };
    const first = oneRun(file, clock);
    await first.ratio();
    expect(first.waits).toEqual([1000]);

    clock.t += 42_000;
    await lookups(15, 25);
    const second = oneRun(file, clock);
    const r = await second.ratio();
    expect(second.waits).toEqual([]);
    expect(r).toMatchObject({
      source: 'window',
      hits: 15,
      misses: 25,
      ratio: 15 / 40,
      windowMs: 42_000,
      windowStart: 'kept',
    });
  });

  it('a kept sample from before a Redis restart (another run_id) is no window start: the window is its uptime', async () => {
    const file = join(dir, 'restart.json');
    const clock = { t: 1_700_000_000_000 };
    const now = await probe.infoStats(1000);
    // Lower counters than now: only the run_id tells the restart apart.
    writeFileSync(
      file,
      JSON.stringify({ at: clock.t - 1000, keyspaceHits: 0, keyspaceMisses: 0, runId: 'f'.repeat(40) }),
    );
    const run = oneRun(file, clock);
    const r = await run.ratio();
    expect(run.waits).toEqual([]);
    expect(r).toMatchObject({ hits: now.keyspaceHits, misses: now.keyspaceMisses });
    expect(r.windowMs).toBeUndefined();
  });

  it('a kept sample older than the maximum age, or a malformed file, means waiting', async () => {
    const clock = { t: 1_700_000_000_000 };
    const stale = join(dir, 'stale.json');
    writeFileSync(stale, JSON.stringify({ ...(await probe.infoStats(1000)), at: clock.t - 61_000 }));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"at": "yesterday"');
    for (const file of [stale, broken]) {
      const run = oneRun(file, clock);
      await run.ratio();
      expect(run.waits).toEqual([1000]);
    }
  });
});
