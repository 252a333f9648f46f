/**
 * Test doubles for the outbox's two ports: a manual clock and a Slack gateway that records
 * calls and fails or hangs on demand. Shared by the outbox's unit and integration tests.
 */

import type { Logger } from '../../src/logger.js';
import type { Clock } from '../../src/outbox/clock.js';
import type { Deliverer } from '../../src/outbox/deliverer.js';
import { createOutbox, type Outbox } from '../../src/outbox/outbox.js';
import type { PacingOptions } from '../../src/outbox/pacing.js';
import type {
  GetPermalinkArgs,
  PostEphemeralArgs,
  PostMessageArgs,
  SlackGateway,
  UpdateArgs,
  UploadFileArgs,
} from '../../src/outbox/slack-gateway.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store-port.js';

interface Timer {
  readonly at: number;
  readonly order: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/** Lets promise chains (a delivery and its bookkeeping) run to completion. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class ManualClock implements Clock {
  private time: number;
  private order = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  schedule(callback: () => void, delayMs: number): () => void {
    const timer: Timer = {
      at: this.time + Math.max(0, delayMs),
      order: this.order++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Moves virtual time forward, firing due timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const next = this.nextTimer();
      if (next === undefined || next.at > target) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.callback();
      await settle();
    }
    this.time = target;
    await settle();
  }

  /** Jumps from timer to timer until `done()` holds; fails after `maxMs` of virtual time. */
  async runUntil(done: () => boolean, maxMs = 600_000): Promise<void> {
    const limit = this.time + maxMs;
    await settle();
    while (!done()) {
      const next = this.nextTimer();
      if (next === undefined || next.at > limit) {
        throw new Error(
          `runUntil: not done after ${maxMs} ms of virtual time (next timer: ${next?.at ?? 'none'})`,
        );
      }
      await this.advance(next.at - this.time);
    }
  }

  private nextTimer(): Timer | undefined {
    let best: Timer | undefined;
    this.timers = this.timers.filter((t) => !t.cancelled);
    for (const t of this.timers) {
      if (best === undefined || t.at < best.at || (t.at === best.at && t.order < best.order)) best = t;
    }
    return best;
  }
}

export type GatewayCall =
  | {
      readonly method: 'postMessage';
      readonly args: PostMessageArgs;
      readonly at: number;
      readonly ts: string;
    }
  | { readonly method: 'update'; readonly args: UpdateArgs; readonly at: number }
  | { readonly method: 'postEphemeral'; readonly args: PostEphemeralArgs; readonly at: number };

export type Attempt = {
  readonly method: GatewayCall['method'] | 'getPermalink' | 'authTest' | 'uploadFile';
  readonly channel: string;
  readonly text: string;
};

/**
 * Records successful calls in `calls` (what Slack would show) and every try in `attempts`.
 * `fault` decides, per attempt, whether to throw; `hold()` makes calls hang until released.
 */
export class FakeGateway implements SlackGateway {
  /** Messages Slack would show. */
  readonly calls: GatewayCall[] = [];
  /** Successful chat.getPermalink calls. */
  readonly permalinkCalls: (GetPermalinkArgs & { readonly at: number })[] = [];
  /** Successful uploads (what Slack would share). */
  readonly uploads: (UploadFileArgs & { readonly at: number })[] = [];
  readonly attempts: (Attempt & { readonly at: number })[] = [];
  fault: ((attempt: Attempt) => Error | undefined) | undefined;
  private gate: Promise<void> | undefined;
  private readonly releases = new Set<() => void>();
  private nextTs = 100;

  constructor(private readonly clock: { now(): number }) {}

  /** Calls made from now on wait until the returned function is called. */
  hold(): () => void {
    let release: () => void = () => {};
    this.gate = new Promise<void>((resolve) => {
      release = () => {
        this.releases.delete(release);
        if (this.gate === gate) this.gate = undefined;
        resolve();
      };
    });
    const gate = this.gate;
    this.releases.add(release);
    return release;
  }

  /** Lets every held call through: a teardown can then wait for the deliverer to stop. */
  releaseAll(): void {
    for (const release of [...this.releases]) release();
  }

  async postMessage(args: PostMessageArgs): Promise<{ ts: string }> {
    await this.enter({ method: 'postMessage', channel: args.channel, text: args.text });
    const ts = `1700000000.${String(this.nextTs++).padStart(6, '0')}`;
    this.calls.push({ method: 'postMessage', args, at: this.clock.now(), ts });
    return { ts };
  }

  async update(args: UpdateArgs): Promise<void> {
    await this.enter({ method: 'update', channel: args.channel, text: args.text });
    this.calls.push({ method: 'update', args, at: this.clock.now() });
  }

  async postEphemeral(args: PostEphemeralArgs): Promise<void> {
    await this.enter({ method: 'postEphemeral', channel: args.channel, text: args.text });
    this.calls.push({ method: 'postEphemeral', args, at: this.clock.now() });
  }

  async getPermalink(args: GetPermalinkArgs): Promise<{ permalink: string }> {
    await this.enter({ method: 'getPermalink', channel: args.channel, text: args.message_ts });
    this.permalinkCalls.push({ ...args, at: this.clock.now() });
    return {
      permalink: `https://fake.slack.test/archives/${args.channel}/p${args.message_ts.replace('.', '')}`,
    };
  }

  async authTest(): Promise<void> {
    await this.enter({ method: 'authTest', channel: '', text: '' });
  }

  async uploadFile(args: UploadFileArgs): Promise<void> {
    await this.enter({ method: 'uploadFile', channel: args.channel, text: args.filename });
    this.uploads.push({ ...args, at: this.clock.now() });
  }

  /** Texts of successful calls, optionally of one method. */
  texts(method?: GatewayCall['method']): string[] {
    return this.calls.filter((c) => method === undefined || c.method === method).map((c) => c.args.text);
  }

  private async enter(attempt: Attempt): Promise<void> {
    this.attempts.push({ ...attempt, at: this.clock.now() });
    if (this.gate !== undefined) await this.gate;
    const error = this.fault?.(attempt);
    if (error !== undefined) throw error;
  }
}

export interface OutboxRig {
  readonly clock: ManualClock;
  readonly store: SqliteStore;
  readonly gateway: FakeGateway;
  readonly deliverer: Deliverer;
  readonly outbox: Outbox;
  /** Runs virtual time until nothing is pending or in flight. */
  drain(maxMs?: number): Promise<void>;
}

/** An outbox over a real SQLite store (a file, or in memory), a manual clock and a fake Slack. */
export function createOutboxRig(
  options: {
    path?: string;
    pacing?: Partial<PacingOptions>;
    clock?: ManualClock;
    gateway?: FakeGateway;
    logger?: Logger;
    /** Puts something between the deliverer and the store (e.g. a store that fails on chosen calls). */
    storePort?: (store: Store) => Store;
  } = {},
): OutboxRig {
  const clock = options.clock ?? new ManualClock();
  const store = openSqliteStore({ path: options.path ?? ':memory:', now: () => clock.now() });
  const gateway = options.gateway ?? new FakeGateway(clock);
  // random = 0.5: jitter is deterministic, half of its range.
  const { outbox, deliverer } = createOutbox({
    store: options.storePort?.(store) ?? store,
    gateway,
    clock,
    random: () => 0.5,
    pacing: options.pacing ?? {},
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  return {
    clock,
    store,
    gateway,
    deliverer,
    outbox,
    async drain(maxMs = 600_000) {
      let drained = false;
      void deliverer.flush(maxMs).then((d) => {
        drained = d;
      });
      await clock.runUntil(() => drained, maxMs + 1);
    },
  };
}
