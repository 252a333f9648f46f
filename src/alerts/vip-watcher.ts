import type { VipState } from '../domain/classify.js';

/**
 * Polls VIP ownership and the VIP's HTTP answer: the fallback for a keepalived notify hook that
 * did not arrive. It reports changes, never levels: one event per confirmed transition.
 *
 * Debouncing (the `confirmations` option): a new state must be seen that many polls in a row.
 * - Single holder (a move, or recovery): 1. keepalived is authoritative about who holds the VIP,
 *   and the notice must come within one poll interval (+1 s) when the hook is missing.
 * - No holder, split brain, HTTP down: 2. A normal failover passes through a moment with no
 *   holder (or, with preemption, two) and a failed HTTP probe; one poll of it is not news. The
 *   hook reports real failovers instantly anyway, so the extra interval costs little.
 * - HTTP back up: 1.
 * Observations with state `unknown` (probe failed, nodes unreachable) carry no news: they neither
 * confirm nor break a streak and never raise an event by themselves. A streak of N must also span
 * (N-1) poll intervals: polls that `nudge()` brings forward cannot confirm a passing moment.
 *
 * Pushed changes (`nudge()`, from the address monitor's stream): a poll now. While every stream
 * is up (`quiet()`), nothing awaits confirmation and the last look saw every node, the watcher
 * polls only every `idleIntervalMs`, as a fallback; otherwise every `intervalMs`. A node the last
 * look could not see keeps the fast pace: its stream may be open over a stalled link, which
 * nothing tells until SSH keepalive gives up on the connection.
 *
 * The first confirmed observation is the baseline: a single holder and a working VIP raise
 * nothing; a baseline of no holder, split brain or HTTP down IS reported (`baseline: true`).
 */

export interface VipObservation {
  readonly state: VipState;
  readonly httpOk: boolean;
  readonly detail: string;
  /** VIP nodes whose addresses this look could not read (SSH silent or refused). */
  readonly unseen?: readonly string[];
}

interface EventBase {
  readonly at: number;
  readonly detail: string;
  /** True when reported as the watcher's first view (e.g. the bot started during an outage). */
  readonly baseline: boolean;
}

export type VipEvent =
  | (EventBase & { readonly kind: 'holder-changed'; readonly from: string; readonly to: string })
  | (EventBase & { readonly kind: 'no-holder'; readonly lastHolder: string | undefined })
  | (EventBase & { readonly kind: 'split-brain'; readonly holders: readonly string[] })
  | (EventBase & {
      readonly kind: 'recovered';
      readonly holder: string;
      readonly after: 'none' | 'split';
      /** The single holder before the trouble, if one was seen: "moved from X to Y". */
      readonly previousHolder: string | undefined;
    })
  | (EventBase & { readonly kind: 'http-down' })
  | (EventBase & { readonly kind: 'http-up' });

export interface Confirmations {
  readonly holder: number;
  readonly noHolder: number;
  readonly splitBrain: number;
  readonly httpDown: number;
  readonly httpUp: number;
}

export const DEFAULT_CONFIRMATIONS: Confirmations = Object.freeze({
  holder: 1,
  noHolder: 2,
  splitBrain: 2,
  httpDown: 2,
  httpUp: 1,
});

/** Same contract as the outbox Clock's `schedule`: returns its own cancel function. */
export type SetTimer = (callback: () => void, delayMs: number) => () => void;

export interface VipWatcherOptions {
  readonly probe: () => Promise<VipObservation>;
  readonly onEvent: (event: VipEvent) => void | Promise<void>;
  readonly now: () => number;
  readonly setTimer: SetTimer;
  /** Time between poll starts (default 2000 ms); a slow poll delays the next, never overlaps it. */
  readonly intervalMs?: number;
  /** Time between polls while `quiet()` and nothing awaits confirmation (default: intervalMs). */
  readonly idleIntervalMs?: number;
  /** True while changes are pushed (every node's address stream is up): polls may slow down. */
  readonly quiet?: () => boolean;
  /** A probe still running after this counts as unknown (default 10 000 ms). */
  readonly probeTimeoutMs?: number;
  readonly confirmations?: Partial<Confirmations>;
  /**
   * After a look that saw the confirmed single holder again (no change): the holder, and when
   * that look began. Lets the caller reconcile a holder recorded elsewhere (a hook) with what
   * the watcher sees: a node cut off without leaving MASTER sends no hook when it comes back,
   * and a watcher that could not see during the outage reports no change either.
   */
  readonly onSteady?: (holder: string, lookStartedAt: number) => void | Promise<void>;
  /** onEvent or onSteady threw or rejected. */
  readonly onError?: (error: unknown) => void;
}

type Holding =
  | { readonly kind: 'single'; readonly holder: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'split'; readonly holders: readonly string[] };

function keyOf(h: Holding): string {
  if (h.kind === 'single') return `single:${h.holder}`;
  if (h.kind === 'split') return `split:${h.holders.join(',')}`;
  return 'none';
}

/**
 * A value that changes only after `required` identical observations in a row, spanning at least
 * (required - 1) × `spanMs` from the first of them.
 */
class Debounced<T> {
  reported: T | undefined;
  private candidate: string | undefined;
  private count = 0;
  private since = 0;

  constructor(
    private readonly key: (value: T) => string,
    private readonly spanMs: number,
  ) {}

  /** A value seen but not yet confirmed. */
  pending(): boolean {
    return this.candidate !== undefined;
  }

  /** The newly confirmed value's previous one (`{ previous }`), or undefined when nothing changed. */
  observe(value: T, required: number, at: number): { previous: T | undefined } | undefined {
    const k = this.key(value);
    if (this.reported !== undefined && this.key(this.reported) === k) {
      this.candidate = undefined;
      this.count = 0;
      return undefined;
    }
    if (this.candidate === k) this.count += 1;
    else {
      this.candidate = k;
      this.count = 1;
      this.since = at;
    }
    if (this.count < required || at - this.since < (required - 1) * this.spanMs) return undefined;
    const previous = this.reported;
    this.reported = value;
    this.candidate = undefined;
    this.count = 0;
    return { previous };
  }
}

export class VipWatcher {
  private readonly intervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly confirmations: Confirmations;
  private readonly idleIntervalMs: number;
  private readonly holding: Debounced<Holding>;
  private readonly http: Debounced<boolean>;
  private lastSingle: string | undefined;
  /** The last look could not read some node's addresses. */
  private blind = false;
  private running = false;
  // A nudge during a poll: that poll's answer may predate the change, so another follows it.
  private nudged = false;
  // Bumped by stop(): a probe answer from before it is dropped.
  private generation = 0;
  private inFlight: Promise<void> | undefined;
  private cancelTimer: (() => void) | undefined;

  constructor(private readonly options: VipWatcherOptions) {
    this.intervalMs = options.intervalMs ?? 2000;
    this.idleIntervalMs = Math.max(this.intervalMs, options.idleIntervalMs ?? this.intervalMs);
    // Spans a little under one interval: a poll delayed by the timer still counts.
    const span = this.intervalMs * 0.9;
    this.holding = new Debounced<Holding>(keyOf, span);
    this.http = new Debounced<boolean>(String, span);
    this.probeTimeoutMs = options.probeTimeoutMs ?? 10_000;
    this.confirmations = { ...DEFAULT_CONFIRMATIONS, ...options.confirmations };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.pollAndReschedule();
  }

  /** Stops polling; a probe already running finishes, but its result is dropped. */
  stop(): void {
    this.running = false;
    this.generation += 1;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  /** Polls now (e.g. when a hook arrives), or joins the poll already running. */
  poll(): Promise<void> {
    this.inFlight ??= this.runPoll().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /**
   * Something changed (an address event, a stream that ended): polls now instead of at the next
   * tick; during a poll, polls once more right after it.
   */
  nudge(): void {
    if (!this.running) return;
    if (this.inFlight !== undefined) {
      if (!this.nudged) {
        this.nudged = true;
        void this.inFlight.finally(() => this.afterNudge());
      }
      return;
    }
    void this.pollAndReschedule();
  }

  private afterNudge(): void {
    if (!this.nudged) return;
    this.nudged = false;
    if (this.running) void this.pollAndReschedule();
  }

  /** The confirmed state, for a status line; undefined before the baseline. */
  current(): { holding: VipState | undefined; httpOk: boolean | undefined } {
    return { holding: this.holding.reported, httpOk: this.http.reported };
  }

  private async pollAndReschedule(): Promise<void> {
    if (!this.running) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const started = this.options.now();
    await this.poll();
    if (!this.running) return;
    if (this.nudged) {
      this.afterNudge();
      return;
    }
    const settled =
      !this.holding.pending() && !this.http.pending() && this.holding.reported !== undefined && !this.blind;
    const interval = settled && this.options.quiet?.() === true ? this.idleIntervalMs : this.intervalMs;
    const wait = Math.max(0, interval - (this.options.now() - started));
    this.cancelTimer = this.options.setTimer(() => {
      this.cancelTimer = undefined;
      void this.pollAndReschedule();
    }, wait);
  }

  private async runPoll(): Promise<void> {
    const generation = this.generation;
    const startedAt = this.options.now();
    const observation = await this.observe();
    if (generation !== this.generation) return;
    this.blind = observation === undefined || (observation.unseen?.length ?? 0) > 0;
    if (observation === undefined) return;
    const before = this.holding.reported;
    const events = this.judge(observation);
    for (const event of events) this.emit(event);
    const state = observation.state;
    if (
      state.kind === 'single' &&
      before?.kind === 'single' &&
      before.holder === state.holder &&
      this.options.onSteady !== undefined
    ) {
      const onSteady = this.options.onSteady;
      this.emit(() => onSteady(state.holder, startedAt));
    }
  }

  /** The probe's answer, or undefined when it failed or timed out (counts as unknown). */
  private observe(): Promise<VipObservation | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const cancel = this.options.setTimer(() => {
        done = true;
        resolve(undefined);
      }, this.probeTimeoutMs);
      const settle = (value: VipObservation | undefined) => {
        if (done) return;
        done = true;
        cancel();
        resolve(value);
      };
      let pending: Promise<VipObservation>;
      try {
        pending = this.options.probe();
      } catch {
        settle(undefined);
        return;
      }
      pending.then(settle, () => settle(undefined));
    });
  }

  private judge(o: VipObservation): VipEvent[] {
    const at = this.options.now();
    const events: VipEvent[] = [];
    const c = this.confirmations;
    const state = o.state;
    if (state.kind !== 'unknown') {
      const holding: Holding =
        state.kind === 'split' ? { kind: 'split', holders: [...state.holders].sort() } : state;
      const required =
        holding.kind === 'single' ? c.holder : holding.kind === 'none' ? c.noHolder : c.splitBrain;
      const change = this.holding.observe(holding, required, at);
      if (change !== undefined) {
        const event = this.holdingEvent(change.previous, holding, at, o.detail);
        if (event !== undefined) events.push(event);
        if (holding.kind === 'single') this.lastSingle = holding.holder;
      }
    }
    const httpChange = this.http.observe(o.httpOk, o.httpOk ? c.httpUp : c.httpDown, at);
    if (httpChange !== undefined) {
      const baseline = httpChange.previous === undefined;
      if (!o.httpOk) events.push({ kind: 'http-down', at, detail: o.detail, baseline });
      else if (!baseline) events.push({ kind: 'http-up', at, detail: o.detail, baseline });
    }
    return events;
  }

  private holdingEvent(
    prev: Holding | undefined,
    next: Holding,
    at: number,
    detail: string,
  ): VipEvent | undefined {
    const baseline = prev === undefined;
    const base = { at, detail, baseline };
    if (next.kind === 'none') return { ...base, kind: 'no-holder', lastHolder: this.lastSingle };
    if (next.kind === 'split') return { ...base, kind: 'split-brain', holders: next.holders };
    if (prev === undefined) return undefined;
    if (prev.kind === 'single')
      return { ...base, kind: 'holder-changed', from: prev.holder, to: next.holder };
    return {
      ...base,
      kind: 'recovered',
      holder: next.holder,
      after: prev.kind,
      previousHolder: this.lastSingle,
    };
  }

  private emit(event: VipEvent | (() => void | Promise<void>)): void {
    const report = (error: unknown) => this.options.onError?.(error);
    try {
      const result = typeof event === 'function' ? event() : this.options.onEvent(event);
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  }
}
