import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_PACING, rateLimitPause, TokenBucket } from '../../src/outbox/pacing.js';

describe('TokenBucket', () => {
  it('allows a burst of 3, then one token per interval', () => {
    const bucket = new TokenBucket(1000, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.availableAt(0)).toBe(1000);
    expect(bucket.take(999)).toBe(false);
    expect(bucket.take(1000)).toBe(true);
    expect(bucket.availableAt(1000)).toBe(2000);
  });

  it('refills to the burst size at most', () => {
    const bucket = new TokenBucket(1000, 3, 0);
    for (let i = 0; i < 3; i++) bucket.take(0);
    const at = 60_000;
    expect([bucket.take(at), bucket.take(at), bucket.take(at), bucket.take(at)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('does not move backwards when the clock does', () => {
    const bucket = new TokenBucket(1000, 1, 5000);
    expect(bucket.take(5000)).toBe(true);
    expect(bucket.take(4000)).toBe(false);
    expect(bucket.availableAt(5500)).toBe(6000);
  });
});

describe('the default post pacing', () => {
  it('holds a busy channel to at most 30 posts in any 30 s window, burst included', () => {
    const { postIntervalMs, postBurst } = DEFAULT_PACING;
    const bucket = new TokenBucket(postIntervalMs, postBurst, 0);
    // A backlog: every post goes as soon as a token is there, for two minutes.
    const times: number[] = [];
    for (let t = 0; t < 120_000; t = bucket.availableAt(t)) if (bucket.take(t)) times.push(t);
    let most = 0;
    for (const [i, start] of times.entries())
      most = Math.max(most, times.slice(i).filter((t) => t < start + 30_000).length);
    expect(most).toBeLessThanOrEqual(30);
    // Still about one per second once the burst is spent.
    expect(times.filter((t) => t >= 60_000).length).toBeGreaterThanOrEqual(50);
  });
});

describe('backoffDelay', () => {
  const p = DEFAULT_PACING;

  it('doubles from 250 ms with equal jitter', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, p, () => 0))).toEqual([125, 250, 500, 1000]);
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, p, () => 0.999_999))).toEqual([250, 500, 1000, 2000]);
  });

  it('caps at 30 s, even after very many failures', () => {
    expect(backoffDelay(8, p, () => 0.999_999)).toBe(30_000);
    expect(backoffDelay(10_000, p, () => 0.999_999)).toBe(30_000);
    expect(backoffDelay(10_000, p, () => 0)).toBe(15_000);
  });
});

describe('rateLimitPause', () => {
  it('honours Retry-After plus up to 250 ms of jitter', () => {
    expect(rateLimitPause(1, DEFAULT_PACING, () => 0)).toBe(1000);
    expect(rateLimitPause(7, DEFAULT_PACING, () => 0.999_999)).toBe(7250);
  });

  it('treats a missing or nonsense Retry-After as one second', () => {
    expect(rateLimitPause(0, DEFAULT_PACING, () => 0)).toBe(1000);
    expect(rateLimitPause(Number.NaN, DEFAULT_PACING, () => 0)).toBe(1000);
  });
});
