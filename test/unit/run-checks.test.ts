import { describe, expect, it, vi } from 'vitest';
import { RedisWindow } from '../../src/diagnostics/redis-window.js';
import { type CheckTask, runChecks } from '../../src/diagnostics/run-checks.js';
import { ErrorCode, OkomeError } from '../../src/errors.js';

function task(id: string, timeoutMs: number, run: CheckTask['run']): CheckTask {
  return { id, check: 'disk', title: id, node: 'pi-a', via: 'ssh', timeoutMs, run };
}

const never = (signal: AbortSignal) =>
  new Promise<never>((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new Error('aborted'))),
  );

describe('runChecks', () => {
  it('runs tasks concurrently and a hung one cannot hold the report past the deadline', async () => {
    // Fake clock: the deadline is proven in simulated time, not against a loaded machine's scheduler.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      let aborted = false;
      let settled = false;
      const run = runChecks(
        [
          task('fast', 1000, async () => ({ status: 'ok', summary: 'fine' })),
          task('hung', 10_000, (signal) => {
            signal.addEventListener('abort', () => {
              aborted = true;
            });
            return never(signal);
          }),
          task('slow', 1000, async () => {
            await new Promise((r) => setTimeout(r, 100));
            return { status: 'warn', summary: 'slow' };
          }),
        ],
        { deadlineMs: 300, now: () => performance.now() },
      ).finally(() => {
        settled = true;
      });
      await vi.advanceTimersByTimeAsync(299);
      expect(settled).toBe(false);
      expect(aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(settled).toBe(true);
      const results = await run;
      expect(results.map((r) => [r.id, r.status, r.durationMs])).toEqual([
        ['fast', 'ok', 0],
        ['hung', 'timeout', 300],
        // Ran alongside the hung task, not after it.
        ['slow', 'warn', 100],
      ]);
      expect(results[1]?.summary).toMatch(/no answer within 300 ms/);
      expect(aborted).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('maps port errors to statuses with their codes', async () => {
    const fail = (code: ErrorCode) => async () => {
      throw new OkomeError(code, code);
    };
    const results = await runChecks(
      [
        task('a', 1000, fail(ErrorCode.SshConnectFailed)),
        task('b', 1000, fail(ErrorCode.SshHostKeyMismatch)),
        task('c', 1000, fail(ErrorCode.SshExecTimeout)),
        task('d', 1000, async () => {
          throw new TypeError('boom');
        }),
      ],
      { deadlineMs: 1000, now: () => performance.now() },
    );
    expect(results.map((r) => [r.status, r.errorCode])).toEqual([
      ['unreachable', ErrorCode.SshConnectFailed],
      ['fail', ErrorCode.SshHostKeyMismatch],
      ['timeout', ErrorCode.SshExecTimeout],
      ['unknown', ErrorCode.Internal],
    ]);
  });

  it('reports progress as each check finishes', async () => {
    const seen: string[] = [];
    await runChecks(
      [
        task('x', 100, async () => ({ status: 'ok', summary: '' })),
        task('y', 100, async () => ({ status: 'ok', summary: '' })),
      ],
      {
        deadlineMs: 100,
        now: () => performance.now(),
        onResult: (r, done, total) => seen.push(`${r.id} ${done}/${total}`),
      },
    );
    expect(seen.map((s) => s.split(' ')[1]).sort()).toEqual(['1/2', '2/2']);
  });
});

describe('RedisWindow', () => {
  const clock = { t: 0 };
  const make = () =>
    new RedisWindow({
      maxAgeMs: 60_000,
      intervalMs: 1000,
      minLookups: 20,
      now: () => clock.t,
      sleep: async (ms) => {
        clock.t += ms;
      },
    });
  const signal = new AbortController().signal;

  it('takes two samples on a cold start and reports the window ratio', async () => {
    const w = make();
    const samples = [
      { keyspaceHits: 1000, keyspaceMisses: 0 },
      { keyspaceHits: 1010, keyspaceMisses: 90 },
    ];
    const r = await w.ratio(async () => samples.shift() ?? { keyspaceHits: 0, keyspaceMisses: 0 }, signal);
    expect(r).toEqual({
      kind: 'hit-ratio',
      ratio: 0.1,
      hits: 10,
      misses: 90,
      source: 'window',
      windowMs: 1000,
      windowStart: 'this-run',
    });
  });

  it('uses the previous sample when recent, and says cumulative when the window is too quiet', async () => {
    const w = make();
    await w.ratio(async () => ({ keyspaceHits: 500, keyspaceMisses: 500 }), signal);
    clock.t += 5000;
    const quiet = await w.ratio(async () => ({ keyspaceHits: 505, keyspaceMisses: 500 }), signal);
    expect(quiet.source).toBe('cumulative');
    expect(quiet.ratio).toBeCloseTo(505 / 1005);
    clock.t += 5000;
    const busy = await w.ratio(async () => ({ keyspaceHits: 505, keyspaceMisses: 600 }), signal);
    expect(busy).toMatchObject({ source: 'window', hits: 0, misses: 100, ratio: 0 });
  });

  it('starts the window again after a Redis restart reset the counters', async () => {
    const w = make();
    await w.ratio(async () => ({ keyspaceHits: 9000, keyspaceMisses: 100 }), signal);
    clock.t += 1000;
    const r = await w.ratio(async () => ({ keyspaceHits: 30, keyspaceMisses: 70 }), signal);
    expect(r).toMatchObject({ source: 'window', hits: 30, misses: 70, ratio: 0.3 });
    expect(r.windowMs).toBeUndefined();
  });

  it('a new run_id is a restart even when the counters have already passed the old ones', async () => {
    const w = make();
    await w.ratio(async () => ({ keyspaceHits: 10, keyspaceMisses: 10, runId: 'a'.repeat(40) }), signal);
    clock.t += 1000;
    const r = await w.ratio(
      async () => ({ keyspaceHits: 60, keyspaceMisses: 40, runId: 'b'.repeat(40) }),
      signal,
    );
    expect(r).toMatchObject({ source: 'window', hits: 60, misses: 40, ratio: 0.6 });
    expect(r.windowMs).toBeUndefined();
  });
});
