import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currentWindow, parseRateLimitKey } from '../../src/domain/parse/index.js';

describe('parseRateLimitKey', () => {
  it('reads agent and window', () => {
    expect(parseRateLimitKey('okome:budget:rl:planner:29533334')).toEqual({
      agent: 'planner',
      window: 29533334,
    });
  });

  it('an agent may contain ":"; the window is the last segment', () => {
    expect(parseRateLimitKey('okome:budget:rl:team:a:agent-7:29533334')).toEqual({
      agent: 'team:a:agent-7',
      window: 29533334,
    });
  });

  it.each([
    'okome:budget:rl:planner',
    'okome:budget:rl::29533334',
    'okome:budget:rl:planner:',
    'okome:budget:rl:planner:12a',
    'okome:budget:rl:planner:-1',
    'okome:budget:writes:planner:29533334',
    'okome:planner:m:h:t:r',
    '',
    'okome:budget:rl:planner:99999999999999999999',
  ])('%j is not a rate-limit key', (key) => {
    expect(parseRateLimitKey(key)).toBeNull();
  });

  it('round-trips any agent and window', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.nat(), (agent, window) => {
        expect(parseRateLimitKey(`okome:budget:rl:${agent}:${window}`)).toEqual({ agent, window });
      }),
    );
  });
});

describe('currentWindow', () => {
  it('whole seconds divided by the window, rounded down', () => {
    expect(currentWindow(1_772_000_059_999, 60)).toBe(29_533_334);
    expect(currentWindow(1_772_000_040_000, 60)).toBe(29_533_334);
    expect(currentWindow(1_772_000_039_999, 60)).toBe(29_533_333);
    expect(currentWindow(0, 60)).toBe(0);
  });

  it('agrees with the key the orchestrator writes for the same moment', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.integer({ min: 1, max: 86_400 }),
        (now, sec) => {
          const w = currentWindow(now, sec);
          expect(w * sec * 1000).toBeLessThanOrEqual(now);
          expect((w + 1) * sec * 1000).toBeGreaterThan(now);
        },
      ),
    );
  });

  it('refuses a window length that configuration would never allow', () => {
    expect(() => currentWindow(0, 0)).toThrow(RangeError);
    expect(() => currentWindow(0, 1.5)).toThrow(RangeError);
  });
});
