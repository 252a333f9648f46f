/**
 * The outbox's delivery policy, as numbers and pure functions.
 *
 * - New posts, per channel: a token bucket of `postBurst` tokens refilled one per
 *   `postIntervalMs` (defaults 3 and 1100 ms). Slack allows about one message per second per
 *   channel with short bursts: a quiet channel takes 3 messages at once, a busy one gets one
 *   per 1.1 s, which pays the burst back within 30 s: any 30 s window holds at most 30 posts
 *   (at 1000 ms a busy channel's first 30 s held 32). Thread replies count too (they are
 *   messages in the channel). An urgent post
 *   (a failover notice) goes before every other queued post of its channel and does not wait
 *   for a token: it borrows one, and the posts after it wait the debt out.
 * - Updates, per message: at most one call per `updateIntervalMs` (1000 ms) counted from the
 *   message's previous post or update; updates enqueued meanwhile coalesce, newest state wins.
 * - 429: the whole channel pauses for Retry-After plus up to `rateLimitJitterMs` (250 ms), so
 *   bots sharing a workspace do not all come back at the same instant.
 * - Retryable errors: the failing queue alone backs off exponentially from `backoffBaseMs`
 *   (250 ms), doubling up to `backoffMaxMs` (30 s), with "equal jitter" (half the step fixed,
 *   half random), and retries forever.
 * - At most `concurrency` (4) calls in flight overall, one per queue, and one post per channel:
 *   concurrent posts would reach Slack in any order, and two top-level messages of a channel
 *   (separate queues) must still appear in the order they were enqueued. Failed attempts
 *   consume post tokens too: Slack may have counted them.
 */
export interface PacingOptions {
  readonly postIntervalMs: number;
  readonly postBurst: number;
  readonly updateIntervalMs: number;
  readonly rateLimitJitterMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly concurrency: number;
}

export const DEFAULT_PACING: PacingOptions = {
  postIntervalMs: 1100,
  postBurst: 3,
  updateIntervalMs: 1000,
  rateLimitJitterMs: 250,
  backoffBaseMs: 250,
  backoffMaxMs: 30_000,
  concurrency: 4,
};

/** A token bucket on an injected clock: starts full. */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** A bucket as another process left it (replicas share each channel's bucket through the store). */
  static restore(intervalMs: number, burst: number, tokens: number, at: number): TokenBucket {
    const bucket = new TokenBucket(intervalMs, burst, at);
    bucket.tokens = Math.min(burst, tokens);
    return bucket;
  }

  /** What restore() needs. */
  snapshot(): { tokens: number; at: number } {
    return { tokens: this.tokens, at: this.at };
  }

  /** The earliest time a token is available (≤ now when one is available now). */
  availableAt(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? now : now + Math.ceil((1 - this.tokens) * this.intervalMs);
  }

  /** Takes a token if one is available; false otherwise. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes a token even when none is left: the bucket goes into debt that later takes repay. */
  borrow(now: number): void {
    this.refill(now);
    this.tokens -= 1;
  }

  private refill(now: number): void {
    if (now <= this.at) return;
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) / this.intervalMs);
    this.at = now;
  }
}

/** Delay before retry number `failures` (1 = after the first failure); `random` in [0, 1). */
export function backoffDelay(failures: number, options: PacingOptions, random: () => number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const step = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** exponent);
  return Math.round(step / 2 + random() * (step / 2));
}

/** How long to pause a channel after a 429. */
export function rateLimitPause(retryAfterSec: number, options: PacingOptions, random: () => number): number {
  const seconds = Number.isFinite(retryAfterSec) && retryAfterSec > 0 ? retryAfterSec : 1;
  return Math.round(seconds * 1000 + random() * options.rateLimitJitterMs);
}
