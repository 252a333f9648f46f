import { AsyncResource } from 'node:async_hooks';
import type { Logger } from '../logger.js';
import type { OutboxRow, OutboxStore } from '../store/store-port.js';
import { type Clock, systemClock } from './clock.js';
import { backoffDelay, DEFAULT_PACING, type PacingOptions, rateLimitPause, TokenBucket } from './pacing.js';
import { decodePayload, decodeUpload, fillPermalinks, type MessagePayload, uploadBytes } from './payload.js';
import { type Blocks, Permanent, RateLimited, type SlackGateway } from './slack-gateway.js';

export interface DelivererOptions {
  readonly store: OutboxStore;
  readonly gateway: SlackGateway;
  readonly clock?: Clock;
  /** Jitter source in [0, 1); tests pass a constant. */
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly pacing?: Partial<PacingOptions>;
  /** While Slack refuses the token: how often auth.test asks whether it works again (30 s). */
  readonly authProbeMs?: number;
  /**
   * Replicas on one store: this replica's name. Rows are then claimed with a lease (claimOutbox)
   * instead of only marked in flight here, each channel's post pacing is read from and written
   * to the store in the claiming transaction, and the store is polled for rows other replicas
   * enqueued or left behind.
   */
  readonly replica?: string;
  /** Replicas: how long a claim lasts (30 s): longer than any Slack call takes (10 s timeout). */
  readonly claimLeaseMs?: number;
  /** Replicas: how often the store is looked at without a wake (1000 ms). */
  readonly replicaPollMs?: number;
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
  /** Slack refuses the bot token: nothing is sent (every row kept) until auth.test passes again. */
  readonly authFailure: { readonly code: string; readonly since: number } | undefined;
}

/** Slack's answers that say the token does not work: no call can succeed until it is fixed. */
export const AUTH_FAILURES: ReadonlySet<string> = new Set([
  'invalid_auth',
  'not_authed',
  'token_revoked',
  'token_expired',
  'account_inactive',
]);

/** Slack's answers that refuse a message for its content: sent once more as plain text. */
export const CONTENT_REFUSALS: ReadonlySet<string> = new Set([
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
]);

/** Slack's answers that refuse any upload by this bot here: the content goes as a message instead. */
export const UPLOAD_REFUSALS: ReadonlySet<string> = new Set([
  'file_uploads_disabled',
  'file_uploads_except_images_disabled',
  'file_type_not_allowed',
  'file_upload_size_restricted',
  'missing_scope',
  'not_allowed_token_type',
]);

/** The plain text a refused message is simplified to: well below Slack's limits. */
const PLAIN_TEXT_MAX = 3500;

type Content = { text: string; blocks?: Blocks };

/** A send: the content (permalinks resolved at send time) and the call that sends some content. */
interface Send {
  readonly content: () => Promise<Content>;
  readonly call: (content: Content) => Promise<string | undefined>;
}

type Plan =
  | ({ readonly kind: 'send' } & Send)
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
 * Failure handling: a message refused for its content (`invalid_blocks`, `msg_too_long`) is
 * sent once more as plain text that says it was simplified, so the thread keeps it. A refused
 * token (`invalid_auth`, `token_revoked`, …) pauses all delivery with every row kept, logs one
 * error and probes auth.test until the token works again. Any other Permanent error marks the
 * row failed and the queue moves on. A thread
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
  /** Rows Slack took whose delivery the store could not record yet: what Slack answered (the ts). */
  private readonly unrecorded = new Map<number, { readonly ts: string | undefined }>();
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
  private readonly authProbeMs: number;
  /** Slack refuses the token: delivery paused until a probe passes. */
  private authFailure: { code: string; since: number } | undefined;
  private cancelProbe: (() => void) | undefined;
  private readonly replica: string | undefined;
  private readonly claimLeaseMs: number;
  private readonly replicaPollMs: number;

  constructor(options: DelivererOptions) {
    this.store = options.store;
    this.gateway = options.gateway;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.logger?.child({ component: 'outbox' });
    this.pacing = { ...DEFAULT_PACING, ...options.pacing };
    this.authProbeMs = options.authProbeMs ?? 30_000;
    this.replica = options.replica;
    this.claimLeaseMs = options.claimLeaseMs ?? 30_000;
    this.replicaPollMs = options.replicaPollMs ?? 1000;
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
    this.cancelProbe?.();
    this.cancelProbe = undefined;
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
      authFailure: this.authFailure === undefined ? undefined : { ...this.authFailure },
    };
  }

  private async pump(): Promise<void> {
    // Paused for the token: the probe wakes us once it works again.
    if (!this.running || this.pumping || this.authFailure !== undefined) return;
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
          for (const { row, send } of round.sends) this.send(row, send);
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
      } while (this.pumpAgain && this.running && this.authFailure === undefined);
    } finally {
      this.pumping = false;
    }
  }

  private async pumpAt(now: number): Promise<{
    sends: { row: OutboxRow; send: Send }[];
    nextDue: number;
    again: boolean;
  }> {
    // Urgent posts first: they must get a concurrency slot before a storm's queues fill them.
    const heads = await this.store.pendingHeads();
    // Replicas: a queue whose head another replica holds is theirs until its lease lapses, and
    // a channel with a post on the wire elsewhere takes no other post meanwhile.
    const elsewhere = (row: OutboxRow) =>
      this.replica !== undefined &&
      row.claimedBy !== null &&
      row.claimedBy !== this.replica &&
      row.leaseUntil > now;
    const postingElsewhere = new Set(
      heads.filter((r) => postsInChannel(r) && elsewhere(r)).map((r) => r.channel),
    );
    const paced = new Set<string>();
    if (this.replica !== undefined)
      await this.loadPacing([...new Set(heads.filter(postsInChannel).map((r) => r.channel))], now);
    // Then everything else, uploads (post-incident reports, charts) last: a resolve's files must
    // not hold a channel's pacing tokens while a new incident waits to be said.
    const rank = (r: OutboxRow) => (isUrgent(r) ? 0 : r.op === 'upload' ? 2 : 1);
    const ordered = [...heads].sort((a, b) => rank(a) - rank(b));
    const sends: { row: OutboxRow; send: Send }[] = [];
    let nextDue = Number.POSITIVE_INFINITY;
    let again = false;
    for (const row of ordered) {
      if (this.authFailure !== undefined) break;
      // Full: a finishing call wakes us, so rows past this point need no timer.
      if (this.inFlightIds.size >= this.pacing.concurrency) break;
      if (this.inFlightQueues.has(row.queueKey)) continue;
      if (elsewhere(row)) {
        nextDue = Math.min(nextDue, row.leaseUntil);
        continue;
      }
      if (postsInChannel(row) && (this.postingChannels.has(row.channel) || postingElsewhere.has(row.channel)))
        continue;
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
      if (postsInChannel(row)) {
        const bucket = this.bucket(row.channel, now);
        // An urgent post borrows a token: the posts after it wait the debt out, so the channel's
        // average rate still holds.
        if (isUrgent(row)) bucket.borrow(now);
        else bucket.take(now);
        paced.add(row.channel);
      }
      sends.push({ row, send: plan });
    }
    if (this.replica !== undefined && paced.size > 0) {
      // In the claiming transaction: the next replica to pump sees the tokens taken here.
      await this.store.saveChannelPacing([...paced].map((channel) => this.pacingOf(channel, now)));
    }
    return { sends, nextDue, again };
  }

  /** Replicas: each post channel's bucket and pause as the store has them (every replica's posts). */
  private async loadPacing(channels: readonly string[], now: number): Promise<void> {
    const stored = new Map((await this.store.channelPacing(channels)).map((p) => [p.channel, p]));
    for (const channel of channels) {
      const p = stored.get(channel);
      if (p === undefined) {
        // Never paced anywhere: a full bucket.
        this.buckets.delete(channel);
        continue;
      }
      this.buckets.set(
        channel,
        TokenBucket.restore(this.pacing.postIntervalMs, this.pacing.postBurst, p.tokens, Math.min(p.at, now)),
      );
      if (p.pausedUntil > now)
        this.pausedUntil.set(channel, Math.max(p.pausedUntil, this.pausedUntil.get(channel) ?? 0));
    }
  }

  private pacingOf(channel: string, now: number) {
    const { tokens, at } = this.bucket(channel, now).snapshot();
    return { channel, tokens, at, pausedUntil: this.pausedUntil.get(channel) ?? 0 };
  }

  private dueAt(row: OutboxRow, now: number): number {
    let due = Math.max(row.nextAttemptAt, this.pausedUntil.get(row.channel) ?? 0);
    if (postsInChannel(row) && !isUrgent(row)) {
      due = Math.max(due, this.bucket(row.channel, now).availableAt(now));
    } else if (row.op === 'update' && row.messageRef !== null) {
      const last = this.lastTouched.get(row.messageRef);
      if (last !== undefined) due = Math.max(due, last + this.pacing.updateIntervalMs);
    }
    return due;
  }

  /** Resolves refs to Slack ts at delivery time: a parent's ts exists only once it is posted. */
  private async plan(row: OutboxRow): Promise<Plan> {
    if (row.op === 'upload') return this.planUpload(row);
    const payload = decodePayload(row.payload);
    if (payload === undefined) return { kind: 'fail', error: DependencyError.InvalidPayload };
    const linked = await this.linkedMessages(payload);
    if (linked === 'wait') return { kind: 'wait' };
    const contentNow = contentOf(payload);
    const content = async (): Promise<Content> =>
      linked.length === 0 ? contentNow : fillPermalinks(payload, await this.resolvePermalinks(linked));
    switch (row.op) {
      case 'post': {
        const thread = await this.threadTsOf(row);
        if (typeof thread === 'object') return thread;
        const threadTs = thread;
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
          content,
          call: async (c) => (await this.gateway.postMessage({ channel: row.channel, ...c, ...options })).ts,
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
          content,
          call: async (c) => {
            await this.gateway.update({ channel: message.channel, ts, ...c });
            return undefined;
          },
        };
      }
      case 'ephemeral': {
        const user = row.user;
        if (user === null) return { kind: 'fail', error: DependencyError.InvalidPayload };
        return {
          kind: 'send',
          content,
          call: async (c) => {
            await this.gateway.postEphemeral({ channel: row.channel, user, ...c });
            return undefined;
          },
        };
      }
    }
  }

  /** A thread reply's parent ts at delivery time: undefined at the top level; a plan while it cannot go. */
  private async threadTsOf(row: OutboxRow): Promise<string | undefined | Plan> {
    if (row.threadRef === null) return undefined;
    const parent = await this.store.message(row.threadRef);
    if (parent === undefined) return { kind: 'fail', error: DependencyError.UnknownMessage };
    // ts first: a parent's post row may have been pruned long after it was sent.
    if (parent.ts === null) {
      if (parent.postState === 'pending') return { kind: 'wait' };
      return {
        kind: 'fail',
        error: parent.postState === 'failed' ? DependencyError.ParentFailed : DependencyError.UnknownMessage,
      };
    }
    return parent.ts;
  }

  /**
   * A file into its thread. Slack refusing uploads (turned off in the workspace, the scope not
   * granted) is no reason to lose what the file says: its fallback message is posted instead.
   */
  private async planUpload(row: OutboxRow): Promise<Plan> {
    const upload = decodeUpload(row.payload);
    if (upload === undefined) return { kind: 'fail', error: DependencyError.InvalidPayload };
    const thread = await this.threadTsOf(row);
    if (typeof thread === 'object') return thread;
    const threadTs = thread;
    const where = threadTs === undefined ? {} : { thread_ts: threadTs };
    const fallback = contentOf(upload.fallback);
    // Once refused, a second call (the fallback simplified to plain text) goes straight to the post.
    let refused = false;
    return {
      kind: 'send',
      content: async () => fallback,
      call: async (c) => {
        if (!refused) {
          try {
            await this.gateway.uploadFile({
              channel: row.channel,
              ...where,
              filename: upload.filename,
              title: upload.title,
              content: uploadBytes(upload),
              ...(upload.comment === undefined ? {} : { initial_comment: upload.comment }),
            });
            return undefined;
          } catch (error) {
            if (!(error instanceof Permanent) || !UPLOAD_REFUSALS.has(error.slackCode)) throw error;
            refused = true;
            this.log?.warn(
              { id: row.id, channel: row.channel, code: error.slackCode },
              'outbox: Slack refused the upload; posting its content as a message instead',
            );
          }
        }
        return (await this.gateway.postMessage({ channel: row.channel, ...c, ...where })).ts;
      },
    };
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
        // A refused token is no verdict on the link: it pauses delivery like any other call.
        if (!(error instanceof Permanent) || AUTH_FAILURES.has(error.slackCode)) throw error;
        this.log?.warn({ ref, code: error.slackCode }, 'outbox: no permalink; using the link fallback');
        out.set(ref, undefined);
      }
    }
    return out;
  }

  /** Records the attempt and marks the row in flight; false when the attempt cannot be recorded. */
  private async take(row: OutboxRow, now: number): Promise<boolean> {
    try {
      if (this.replica === undefined) await this.store.recordAttempt(row.id);
      else if (!(await this.store.claimOutbox(row.id, this.replica, now, now + this.claimLeaseMs)))
        return false;
    } catch (error) {
      this.log?.error({ err: error, id: row.id }, 'outbox: cannot record an attempt; not sending');
      return false;
    }
    this.inFlightIds.add(row.id);
    this.inFlightQueues.add(row.queueKey);
    if (postsInChannel(row)) this.postingChannels.add(row.channel);
    if (row.messageRef !== null) this.lastTouched.set(row.messageRef, now);
    return true;
  }

  /** Sends a taken row; called after the pump's transaction, so the send holds no lock. */
  private send(row: OutboxRow, send: Send): void {
    const delivery = this.deliver(row, send).finally(() => {
      this.inFlightIds.delete(row.id);
      this.inFlightQueues.delete(row.queueKey);
      if (postsInChannel(row)) this.postingChannels.delete(row.channel);
      this.deliveries.delete(delivery);
      this.wake();
      void this.notifyIfIdle();
    });
    this.deliveries.add(delivery);
  }

  private async deliver(row: OutboxRow, send: Send): Promise<void> {
    let ts: string | undefined;
    // An update sent twice is harmless (and its payload may have been replaced meanwhile).
    const unrecorded = row.op === 'update' ? undefined : this.unrecorded.get(row.id);
    if (unrecorded !== undefined) {
      // Slack already has it (the store failed to say so): record it, do not send it again.
      ts = unrecorded.ts;
    } else {
      try {
        ts = await this.attempt(row, send);
      } catch (error) {
        await this.onError(row, error);
        return;
      }
    }
    const now = this.clock.now();
    this.failureStreak.delete(row.queueKey);
    try {
      if (postsInChannel(row) && ts !== undefined) await this.store.markPosted(row.id, ts, now);
      else await this.store.markSent(row.id, now);
      this.unrecorded.delete(row.id);
    } catch (error) {
      // Slack has it but the store cannot say so (e.g. PostgreSQL restarting): this process keeps
      // what Slack answered and records it on the next try instead of sending again. Only a
      // restart, or another replica taking the row after its claim lapses, sends it again.
      this.unrecorded.set(row.id, { ts });
      this.log?.error(
        { err: error, id: row.id },
        'outbox: delivered but could not record it yet; will record, not resend',
      );
      await this.deferQuietly(row, now + this.pacing.backoffMaxMs, 'record_failed');
      return;
    }
    this.log?.debug({ id: row.id, op: row.op, channel: row.channel, ts }, 'outbox: delivered');
  }

  /** One send; a message refused for its content goes once more, as plain text that says so. */
  private async attempt(row: OutboxRow, send: Send): Promise<string | undefined> {
    const content = await send.content();
    try {
      return await send.call(content);
    } catch (error) {
      if (!(error instanceof Permanent) || !CONTENT_REFUSALS.has(error.slackCode)) throw error;
      this.log?.warn(
        { id: row.id, op: row.op, channel: row.channel, code: error.slackCode },
        'outbox: Slack refused the message for its content; sending it as plain text',
      );
      return send.call(plainText(content, error.slackCode));
    }
  }

  /**
   * Slack refuses the token: every call would fail the same way, so nothing is sent (no row is
   * failed) until auth.test passes. Said once, loudly; /healthz reports it meanwhile.
   */
  private pauseForAuth(code: string, now: number): void {
    if (this.authFailure !== undefined) return;
    this.authFailure = { code, since: now };
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.log?.error(
      { code },
      `outbox: Slack refuses the bot token (${code}): delivery paused, every message kept. ` +
        'Fix SLACK_BOT_TOKEN (reinstall the app or issue a new token); delivery resumes once it works',
    );
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    this.cancelProbe?.();
    if (!this.running) return;
    this.cancelProbe = this.clock.schedule(() => {
      this.cancelProbe = undefined;
      void this.probeAuth();
    }, this.authProbeMs);
  }

  private async probeAuth(): Promise<void> {
    const paused = this.authFailure;
    if (paused === undefined || !this.running) return;
    try {
      await this.gateway.authTest();
    } catch (error) {
      const code = error instanceof Permanent ? error.slackCode : 'unreachable';
      this.log?.debug({ code }, 'outbox: the bot token still does not work');
      this.scheduleProbe();
      return;
    }
    this.authFailure = undefined;
    this.log?.warn(
      { code: paused.code, pausedMs: this.clock.now() - paused.since },
      'outbox: the bot token works again; delivery resumed',
    );
    this.wake();
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
      if (this.replica !== undefined) await this.sharePause(row.channel, now);
      this.log?.info(
        { ...where, retryAfterSec: error.retryAfterSec },
        'outbox: rate limited; channel paused',
      );
      await this.deferQuietly(row, until, 'ratelimited');
      return;
    }
    if (error instanceof Permanent && AUTH_FAILURES.has(error.slackCode)) {
      // Kept and due at once: it goes first when the token works again.
      await this.deferQuietly(row, now, error.slackCode);
      this.pauseForAuth(error.slackCode, now);
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

  /** Replicas: a 429 pauses the channel for every replica. */
  private async sharePause(channel: string, now: number): Promise<void> {
    try {
      await this.store.atomically(async () => {
        await this.loadPacing([channel], now);
        await this.store.saveChannelPacing([this.pacingOf(channel, now)]);
      });
    } catch (error) {
      this.log?.error({ err: error, channel }, 'outbox: cannot share a rate-limit pause');
    }
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
    // Replicas: rows other replicas enqueue (or leave behind when they die) wake nobody here.
    const due = this.replica === undefined ? dueAt : Math.min(dueAt, now + this.replicaPollMs);
    if (!this.running || !Number.isFinite(due)) return;
    this.cancelTimer = this.clock.schedule(() => {
      this.cancelTimer = undefined;
      this.wake();
    }, due - now);
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

/** Creates a message in the channel: paced, and one at a time per channel, like a post. */
function postsInChannel(row: OutboxRow): boolean {
  return row.op === 'post' || row.op === 'upload';
}

/** A post flagged urgent (MessagePayload.urgent); the string test spares decoding every head. */
function isUrgent(row: OutboxRow): boolean {
  return (
    row.op === 'post' && row.payload.includes('"urgent":true') && decodePayload(row.payload)?.urgent === true
  );
}

function contentOf(payload: MessagePayload): Content {
  return payload.blocks === undefined
    ? { text: payload.text }
    : { text: payload.text, blocks: payload.blocks };
}

/** The message as plain text (no blocks), clipped, saying it was simplified and why. */
function plainText(content: Content, code: string): Content {
  const note = `\n_(simplified: Slack refused the formatted message, ${code})_`;
  const room = PLAIN_TEXT_MAX - note.length;
  let text = content.text;
  if (text.length > room) {
    let end = room - 1;
    // Never split a surrogate pair.
    const c = text.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end -= 1;
    text = `${text.slice(0, end)}…`;
  }
  return { text: `${text}${note}` };
}
