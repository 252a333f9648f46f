import { describe, expect, it } from 'vitest';
import type { CheckResult, Facts } from '../../src/domain/check-result.js';
import { hitRatioSampleOf } from '../../src/domain/hit-ratio-sample.js';

const check = (id: CheckResult['check'], facts: Facts | undefined): Pick<CheckResult, 'check' | 'facts'> => ({
  check: id,
  facts,
});

describe('the hit ratio a judgement keeps in the timeline', () => {
  it("takes the Redis hit ratio check's window, nothing else", () => {
    expect(
      hitRatioSampleOf([
        check('redis-ping', { kind: 'redis-ping', reply: 'PONG' }),
        check('redis-hit-ratio', {
          kind: 'hit-ratio',
          ratio: 0.25,
          hits: 25,
          misses: 75,
          source: 'window',
          windowMs: 42_000,
          windowStart: 'kept',
        }),
      ]),
    ).toEqual({ ratio: 0.25, hits: 25, misses: 75, source: 'window', windowMs: 42_000 });
  });

  it('none without a ratio: no check, no lookups, or an nginx log ratio', () => {
    expect(hitRatioSampleOf([])).toBeUndefined();
    expect(
      hitRatioSampleOf([
        check('redis-hit-ratio', {
          kind: 'hit-ratio',
          ratio: null,
          hits: 0,
          misses: 0,
          source: 'cumulative',
        }),
      ]),
    ).toBeUndefined();
    expect(hitRatioSampleOf([check('redis-hit-ratio', undefined)])).toBeUndefined();
    expect(
      hitRatioSampleOf([
        check('nginx-hit-ratio', { kind: 'hit-ratio', ratio: 0.9, hits: 9, misses: 1, source: 'log' }),
      ]),
    ).toBeUndefined();
  });
});
