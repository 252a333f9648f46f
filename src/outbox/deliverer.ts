import { AsyncResource } from 'node:async_hooks';
import type { Logger } from '../logger.js';
import type { OutboxRow, OutboxStore } from '../store/store-port.js';
import { type Clock, systemClock } from './clock.js';
import { backoffDelay, DEFAULT_PACING, type PacingOptions, rateLimitPause, TokenBucket } from './pacing.js';
import { decodePayload, fillPermalinks, type MessagePayload } from './payload.js';
import { type Blocks, Permanent, RateLimited, type SlackGateway } from './slack-gateway.js';

export interface DelivererOptions {
  readonly store: OutboxStore;
  readonly gateway: SlackGateway;
  readonly clock?: Clock;
  /** Jitter source in [0, 1); tests pass a constant. */
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly pacing?: Partial<PacingOptions>;
}

/** What the enqueue side (Outbox) needs from the delivery loop. */
export interface DeliveryLoop {
  /** Something was enqueued: look now instead of at the next timer. */
  wake(): void;
  /** A row being sent must not be coalesced into: its payload is already on the wire. */
  isInFlight(rowId: number): boolean;
  liveStats(): LiveStats;
}

export interface LiveStats {
  readonly running: boolean;
  readonly inFlight: number;
  /** Channels paused by a 429, and until when. */
  readonly pausedChannels: readonly { readonly channel: string; readonly until: number }[];
  /** Queues whose head is waiting out a retry backoff. */
  readonly backingOff: number;
}

type Plan =
  | { readonly kind: 'send'; readonly call: () => Promise<string | undefined> }
  | { readonly kind: 'wait' }
  | { readonly kind: 'fail'; readonly error: string };

/** Failures recorded on rows that could not be sent because of another row. */
export const DependencyError = {
  /** A thread reply whose parent post failed for good. */
  ParentFailed: 'parent_failed',
  /** An update of a message whose post failed for good. */
  MessageNotPosted: 'message_not_posted',
  UnknownMessage: 'unknown_message',
  InvalidPayload: 'invalid_payload',
} as const;

/**
 * Delivers the outbox: reads pending rows from the store (never from memory, so a restart
 * resumes exactly where the database says), sends each queue's head through the gateway and
 * records the outcome. Policy in pacing.ts.
 *
 * Failure handling: a Permanent error marks the row failed and the queue moves on. A thread
 * reply whose parent post failed, and an update of a message that was never posted, are
 * marked failed as well (`parent_failed`, `message_not_posted`) rather than posted at the
 * channel's top level: they would arrive out of context, and the parent's failure is already
 * logged with its Slack error code.
 *
 * Delivery is at least once: the ts of a post is written in the same tick Slack answers, so a
 * post is sent twice only if the process dies between Slack's answer and that write (or a
 * call times out after Slack acted on it).
 */
export class Deliverer implements DeliveryLoop {
  private readonly store: OutboxStore;
  private readonly gateway: SlackGateway;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly pacing: PacingOptions;

  private running = false;
  private pumpQueued = false;
  /** A pump is reading the store; a wake meanwhile asks it to look once more. */
  private pumping = false;
  private pumpAgain = false;
  private cancelTimer: (() => void) | undefined;
  private readonly inFlightIds = new Set<number>();
  private readonly inFlightQueues = new Set<string>();
  /** Channels with a post in flight: posts to one channel go one at a time, in seq order. */
  private readonly postingChannels = new Set<string>();
  private readonly deliveries = new Set<Promise<void>>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly pausedUntil = new Map<string, number>();
  /** messageRef → when its last post or update was sent: paces updates per message. */
  private readonly lastTouched = new Map<string, number>();
  /** messageRef → its permalink: asked of Slack once per message. */
  private readonly permalinks = new Map<string, string>();
  /** queueKey → consecutive retryable failures of its head. */
  private readonly failureStreak = new Map<string, number>();
  private readonly idleWaiters = new Set<() => void>();

  constructor(options: DelivererOptions) {
    this.store = options.store;
    this.gateway = options.gateway;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger?.child({ component: 'outbox' });
    this.pacing = { ...DEFAULT_PACING, ...options.pacing };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** Stops scheduling and waits for calls in flight to be recorded; close the store after. */
  async stop(): Promise<void> {
    this.running = false;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await Promise.allSettled([...this.deliveries]);
  }

  /** Resolves true once nothing is pending or in flight, false after `timeoutMs` (clock time). */
  async flush(timeoutMs: number): Promise<boolean> {
    if (await this.isIdle()) return true;
    return new Promise((resolve) => {
      let cancel: () => void = () => {};
      const settle = (drained: boolean): void => {
        this.idleWaiters.delete(onIdle);
        cancel();
        resolve(drained);
      };
      const onIdle = (): void => settle(true);
      this.idleWaiters.add(onIdle);
      cancel = this.clock.schedule(() => settle(false), timeoutMs);
      this.wake();
    });
  }

  /**
   * Bound to the context the deliverer was made in: a wake from inside a store transaction
   * (an enqueue) must not run the pump as part of that transaction's async context.
   */
  readonly wake = AsyncResource.bind((): void => {
    if (!this.running) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    // A microtask: a burst of enqueues (and their coalescing) lands before we look.
    queueMicrotask(() => {
      this.pumpQueued = false;
      void this.pump();
    });
  });

  isInFlight(rowId: number): boolean {
    return this.inFlightIds.has(rowId);
  }

  liveStats(): LiveStats {
    const now = this.clock.now();
    const pausedChannels = [...this.pausedUntil]
      .filter(([, until]) => until > now)
      .map(([channel, until]) => ({ channel, until }));
    return {
      running: this.running,
      inFlight: this.inFlightIds.size,
      pausedChannels,
      backingOff: this.failureStreak.size,
    };
  }

  private async pump(): Promise<void> {
    if (!this.running || this.pumping) return;
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const now = this.clock.now();
        try {
          // One transaction from reading the heads to marking rows in flight: an update that
          // coalesces into a pending row (Outbox.enqueueUpdate) sees either the row before we
          // took it, or that it is in flight, never a row read but not yet marked.
          const round = await this.store.atomically(() => this.pumpAt(now));
          for (const { row, call } of round.sends) this.send(row, call);
          this.arm(round.nextDue, now);
          this.forgetStale(now);
          if (round.again) this.pumpAgain = true;
          else await this.notifyIfIdle();
        } catch (error) {
          // A store failure (disk full, locked too long) must not kill the process.
          this.log?.error({ err: error }, 'outbox: cannot read or plan pending rows; retrying');
          this.arm(now + this.pacing.backoffMaxMs, now);
          return;
        }
      } while (this.pumpAgain && this.running);
    } finally {
      this.pumping = false;
    }
  }

  private async pumpAt(now: number): Promise<{
    sends: { row: OutboxRow; call: () => Promise<string | undefined> }[];
    nextDue: number;
    again: boolean;
  }> {
    // Urgent posts first: they must get a concurrency slot before a storm's queues fill them.
    const heads = await this.store.pendingHeads();
    const urgent = heads.filter(isUrgent);
    const ordered = urgent.length === 0 ? heads : [...urgent, ...heads.filter((r) => !urgent.includes(r))];
    const sends: { row: OutboxRow; call: () => Promise<string | undefined> }[] = [];
    let nextDue = Number.POSITIVE_INFINITY;
    let again = false;
    for (const row of ordered) {
      // Full: a finishing call wakes us, so rows past this point need no timer.
      if (this.inFlightIds.size >= this.pacing.concurrency) break;
      if (this.inFlightQueues.has(row.queueKey)) continue;
      if (row.op === 'post' && this.postingChannels.has(row.channel)) continue;
      const due = this.dueAt(row, now);
      if (due > now) {
        nextDue = Math.min(nextDue, due);
        continue;
      }
      const plan = await this.plan(row);
      if (plan.kind === 'wait') {
        this.log?.debug({ id: row.id, queue: row.queueKey }, 'outbox: head waits for its parent message');
        continue;
      }
      if (plan.kind === 'fail') {
        await this.fail(row, plan.error, now);
        again = true; // the queue's next row is now its head
        continue;
      }
      if (!(await this.take(row, now))) continue;
      if (row.op === 'post') {
        const bucket = this.bucket(row.channel, now);
        // An urgent post borrows a token: the posts after it wait the debt out, so the channel's
        // average rate still holds.
        if (isUrgent(row)) bucket.borrow(now);
        else bucket.take(now);
      }
      sends.push({ row, call: plan.call });
    }
    return { sends, nextDue, again };
  }

  private dueAt(row: OutboxRow, now: number): number {
    let due = Math.max(row.nextAttemptAt, this.pausedUntil.get(row.channel) ?? 0);
    if (row.op === 'post' && !isUrgent(row)) {
      due = Math.max(due, this.bucket(row.channel, now).availableAt(now));
    } else if (row.op === 'update' && row.messageRef !== null) {
      const last = this.lastTouched.get(row.messageRef);
      if (last !== undefined) due = Math.max(due, last + this.pacing.updateIntervalMs);
    }
    return due;
  }

  /** Resolves refs to Slack ts at delivery time: a parent's ts exists only once it is posted. */
  private async plan(row: OutboxRow): Promise<Plan> {
    const payload = decodePayload(row.payload);
    if (payload === undefined) return { kind: 'fail', error: DependencyError.InvalidPayload };
    const linked = await this.linkedMessages(payload);
    if (linked === 'wait') return { kind: 'wait' };
    const contentNow = contentOf(payload);
    const content = async () =>
      linked.length === 0 ? contentNow : fillPermalinks(payload, await this.resolvePermalinks(linked));
    switch (row.op) {
      case 'post': {
        let threadTs: string | undefined;
        if (row.threadRef !== null) {
          const parent = await this.store.message(row.threadRef);
          if (parent === undefined) return { kind: 'fail', error: DependencyError.UnknownMessage };
          // ts first: a parent's post row may have been pruned long after it was sent.
          if (parent.ts === null) {
            if (parent.postState === 'pending') return { kind: 'wait' };
            return {
              kind: 'fail',
              error:
                parent.postState === 'failed' ? DependencyError.ParentFailed : DependencyError.UnknownMessage,
            };
          }
          threadTs = parent.ts;
        }
        const options = {
          ...(threadTs === undefined ? {} : { thread_ts: threadTs }),
          ...(threadTs === undefined || payload.reply_broadcast === undefined
            ? {}
            : { reply_broadcast: payload.reply_broadcast }),
          ...(payload.unfurl_links === undefined ? {} : { unfurl_links: payload.unfurl_links }),
          ...(payload.unfurl_media === undefined ? {} : { unfurl_media: payload.unfurl_media }),
        };
        return {
          kind: 'send',
          call: async () =>
            (await this.gateway.postMessage({ channel: row.channel, ...(await content()), ...options })).ts,
        };
      }
      case 'update': {
        const message = row.messageRef === null ? undefined : await this.store.message(row.messageRef);
        if (message === undefined) return { kind: 'fail', error: DependencyError.UnknownMessage };
        const ts = message.ts;
        if (ts === null) {
          return message.postState === 'pending'
            ? { kind: 'wait' }
            : { kind: 'fail', error: DependencyError.MessageNotPosted };
        }
        return {
          kind: 'send',
          call: async () => {
            await this.gateway.update({ channel: message.channel, ts, ...(await content()) });
            return undefined;
          },
        };
      }
      case 'ephemeral': {
        const user = row.user;
        if (user === null) return { kind: 'fail', error: DependencyError.InvalidPayload };
        return {
          kind: 'send',
          call: async () => {
            await this.gateway.postEphemeral({ channel: row.channel, user, ...(await content()) });
            return undefined;
          },
        };
      }
    }
  }

  /**
   * The messages a payload links to: 'wait' while one of them is still to be posted; a message
   * that will never be posted (failed, unknown) has ts undefined and gets the link's fallback.
   */
  private async linkedMessages(
    payload: MessagePayload,
  ): Promise<readonly { ref: string; channel: string; ts: string | undefined }[] | 'wait'> {
    const linked: { ref: string; channel: string; ts: string | undefined }[] = [];
    for (const link of payload.links ?? []) {
      const message = await this.store.message(link.ref);
      if (message === undefined) {
        this.log?.warn({ ref: link.ref }, 'outbox: a link names no known message; using its fallback');
        linked.push({ ref: link.ref, channel: '', ts: undefined });
        continue;
      }
      if (message.ts === null && message.postState === 'pending') return 'wait';
      linked.push({ ref: link.ref, channel: message.channel, ts: message.ts ?? undefined });
    }
    return linked;
  }

  /** ref → permalink (undefined: there will be none). Rate limits and outages throw: the row retries. */
  private async resolvePermalinks(
    linked: readonly { ref: string; channel: string; ts: string | undefined }[],
  ): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    for (const { ref, channel, ts } of linked) {
      const cached = this.permalinks.get(ref);
      if (cached !== undefined || ts === undefined) {
        out.set(ref, cached);
        continue;
      }
      try {
        const { permalink } = await this.gateway.getPermalink({ channel, message_ts: ts });
        if (this.permalinks.size >= PERMALINK_CACHE_SIZE) {
          const oldest = this.permalinks.keys().next().value;
          if (oldest !== undefined) this.permalinks.delete(oldest);
        }
        this.permalinks.set(ref, permalink);
        out.set(ref, permalink);
      } catch (error) {
        // Slack says no for good (message_not_found…): the message still goes, with the fallback.
        if (!(error instanceof Permanent)) throw error;
        this.log?.warn({ ref, code: error.slackCode }, 'outbox: no permalink; using the link fallback');
        out.set(ref, undefined);
      }
    }
    return out;
  }

  /** Records the attempt and marks the row in flight; false when the attempt cannot be recorded. */
  private async take(row: OutboxRow, now: number): Promise<boolean> {
    try {
      await this.store.recordAttempt(row.id);
    } catch (error) {
      this.log?.error({ err: error, id: row.id }, 'outbox: cannot record an attempt; not sending');
      return false;
    }
    this.inFlightIds.add(row.id);
    this.inFlightQueues.add(row.queueKey);
    if (row.op === 'post') this.postingChannels.add(row.channel);
    if (row.messageRef !== null) this.lastTouched.set(row.messageRef, now);
    return true;
  }

  /** Sends a taken row; called after the pump's transaction, so the send holds no lock. */
  private send(row: OutboxRow, call: () => Promise<string | undefined>): void {
    const delivery = this.deliver(row, call).finally(() => {
      this.inFlightIds.delete(row.id);
      this.inFlightQueues.delete(row.queueKey);
      if (row.op === 'post') this.postingChannels.delete(row.channel);
      this.deliveries.delete(delivery);
      this.wake();
      void this.notifyIfIdle();
    });
    this.deliveries.add(delivery);
  }

  private async deliver(row: OutboxRow, call: () => Promise<string | undefined>): Promise<void> {
    let ts: string | undefined;
    try {
      ts = await call();
    } catch (error) {
      await this.onError(row, error);
      return;
    }
    const now = this.clock.now();
    this.failureStreak.delete(row.queueKey);
    try {
      if (row.op === 'post' && ts !== undefined) await this.store.markPosted(row.id, ts, now);
      else await this.store.markSent(row.id, now);
    } catch (error) {
      // Slack has it but the store cannot say so: it will be sent again (at least once).
      this.log?.error({ err: error, id: row.id }, 'outbox: delivered but could not record it; it may repeat');
      await this.deferQuietly(row, now + this.pacing.backoffMaxMs, 'record_failed');
      return;
    }
    this.log?.debug({ id: row.id, op: row.op, channel: row.channel, ts }, 'outbox: delivered');
  }

  private async onError(row: OutboxRow, error: unknown): Promise<void> {
    const now = this.clock.now();
    const where = {
      id: row.id,
      op: row.op,
      channel: row.channel,
      queue: row.queueKey,
      attempts: row.attempts + 1,
    };
    if (error instanceof RateLimited) {
      const until = now + rateLimitPause(error.retryAfterSec, this.pacing, this.random);
      this.pausedUntil.set(row.channel, Math.max(until, this.pausedUntil.get(row.channel) ?? 0));
      this.log?.info(
        { ...where, retryAfterSec: error.retryAfterSec },
        'outbox: rate limited; channel paused',
      );
      await this.deferQuietly(row, until, 'ratelimited');
      return;
    }
    if (error instanceof Permanent) {
      this.failureStreak.delete(row.queueKey);
      await this.fail(row, error.slackCode, now);
      return;
    }
    // Retryable, or anything unclassified: keep it, never drop a message because Slack was down.
    const failures = (this.failureStreak.get(row.queueKey) ?? 0) + 1;
    this.failureStreak.set(row.queueKey, failures);
    const delay = backoffDelay(failures, this.pacing, this.random);
    const message = error instanceof Error ? error.message : String(error);
    this.log?.warn({ ...where, err: error, retryInMs: delay }, 'outbox: Slack call failed; will retry');
    await this.deferQuietly(row, now + delay, message.slice(0, 500));
  }

  private async fail(row: OutboxRow, code: string, now: number): Promise<void> {
    this.log?.error(
      { id: row.id, op: row.op, channel: row.channel, messageRef: row.messageRef, code },
      'outbox: Slack call failed for good; moving on',
    );
    try {
      await this.store.markFailed(row.id, code, now);
    } catch (error) {
      this.log?.error({ err: error, id: row.id }, 'outbox: cannot record a failure');
    }
  }

  private async deferQuietly(row: OutboxRow, until: number, error: string): Promise<void> {
    try {
      await this.store.deferOutbox(row.id, until, error);
    } catch (storeError) {
      this.log?.error({ err: storeError, id: row.id }, 'outbox: cannot defer a row');
    }
  }

  private bucket(channel: string, now: number): TokenBucket {
    let bucket = this.buckets.get(channel);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.pacing.postIntervalMs, this.pacing.postBurst, now);
      this.buckets.set(channel, bucket);
    }
    return bucket;
  }

  private arm(dueAt: number, now: number): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (!this.running || !Number.isFinite(dueAt)) return;
    this.cancelTimer = this.clock.schedule(() => {
      this.cancelTimer = undefined;
      this.wake();
    }, dueAt - now);
  }

  /** Keeps the in-memory pacing maps from growing with every message ever sent. */
  private forgetStale(now: number): void {
    for (const [channel, until] of this.pausedUntil) if (until <= now) this.pausedUntil.delete(channel);
    if (this.lastTouched.size < 1000) return;
    for (const [ref, at] of this.lastTouched) {
      if (now - at >= this.pacing.updateIntervalMs) this.lastTouched.delete(ref);
    }
  }

  private async isIdle(): Promise<boolean> {
    if (this.inFlightIds.size > 0) return false;
    try {
      return (await this.store.pendingCount()) === 0 && this.inFlightIds.size === 0;
    } catch {
      return false; // store closed or failing: not idle, flush() will time out and say so
    }
  }

  private async notifyIfIdle(): Promise<void> {
    if (this.idleWaiters.size === 0 || !(await this.isIdle())) return;
    for (const waiter of [...this.idleWaiters]) waiter();
  }
}

/** Enough for every incident thread a status summary links to. */
const PERMALINK_CACHE_SIZE = 1000;

/** A post flagged urgent (MessagePayload.urgent); the string test spares decoding every head. */
function isUrgent(row: OutboxRow): boolean {
  return (
    row.op === 'post' && row.payload.includes('"urgent":true') && decodePayload(row.payload)?.urgent === true
  );
}

function contentOf(payload: MessagePayload): { text: string; blocks?: Blocks } {
  return payload.blocks === undefined
    ? { text: payload.text }
    : { text: payload.text, blocks: payload.blocks };
}
