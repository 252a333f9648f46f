import { parseCount } from './result.js';

export interface RateLimitKey {
  readonly agent: string;
  /** Unix seconds divided by the window length, as an integer. */
  readonly window: number;
}

const PREFIX = 'okome:budget:rl:';

/**
 * Reads `okome:budget:rl:{agent}:{window}`. The agent may itself contain `:`, so the window
 * is the last segment, which must be all digits. Anything else is null: not one of ours.
 */
export function parseRateLimitKey(key: string): RateLimitKey | null {
  if (!key.startsWith(PREFIX)) return null;
  const rest = key.slice(PREFIX.length);
  const colon = rest.lastIndexOf(':');
  if (colon <= 0) return null;
  const window = parseCount(rest.slice(colon + 1));
  if (window === null) return null;
  return { agent: rest.slice(0, colon), window };
}

/**
 * The fixed window `nowMs` falls in, as the orchestrator computes it (whole unix seconds
 * divided by the window length, rounded down).
 * @throws RangeError when windowSec is not a positive integer: a programming error, as the
 *   configuration guarantees one.
 */
export function currentWindow(nowMs: number, windowSec: number): number {
  if (!Number.isInteger(windowSec) || windowSec <= 0) {
    throw new RangeError(`windowSec must be a positive integer, got ${windowSec}`);
  }
  return Math.floor(Math.floor(nowMs / 1000) / windowSec);
}
