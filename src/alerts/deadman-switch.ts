import {
  type DeadmanNotice,
  type DeadmanState,
  deadmanCheck,
  deadmanDueAt,
  deadmanSeen,
  initialDeadman,
} from '../domain/deadman.js';
import type { Clock } from '../outbox/clock.js';

/**
 * The dead-man's switch's timer: one per deployment (a leader runs it once there are several
 * bots). `seen()` is each Watchdog delivery; one timer, re-armed for the instant the Watchdog
 * becomes overdue, trips it. Notices go to `notify` once per change (down, back).
 */
export interface DeadmanSwitchOptions {
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly notify: (notice: DeadmanNotice) => Promise<void>;
  readonly onError: (error: unknown) => void;
}

export class DeadmanSwitch {
  private state: DeadmanState;
  private cancel: (() => void) | undefined;
  private running = false;

  constructor(private readonly options: DeadmanSwitchOptions) {
    this.state = initialDeadman(options.clock.now());
  }

  /**
   * Starts watching: the timeout counts from now until the first Watchdog arrives, or goes on
   * from `from` (the state a previous leader left: no notice is said twice).
   */
  start(from?: DeadmanState): void {
    if (this.running) return;
    this.running = true;
    this.state = from ?? initialDeadman(this.options.clock.now());
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.cancel?.();
    this.cancel = undefined;
  }

  /** A Watchdog delivery (new or repeated) received at `at`. */
  seen(at: number): void {
    if (!this.running) return;
    const { state, notice } = deadmanSeen(this.state, at);
    this.state = state;
    this.emit(notice);
    this.arm();
  }

  current(): DeadmanState {
    return this.state;
  }

  private check(): void {
    this.cancel = undefined;
    if (!this.running) return;
    const { state, notice } = deadmanCheck(this.state, this.options.clock.now(), this.options.timeoutMs);
    this.state = state;
    this.emit(notice);
    this.arm();
  }

  private arm(): void {
    this.cancel?.();
    this.cancel = undefined;
    const due = deadmanDueAt(this.state, this.options.timeoutMs);
    if (due === undefined) return;
    this.cancel = this.options.clock.schedule(() => this.check(), due - this.options.clock.now());
  }

  private emit(notice: DeadmanNotice | undefined): void {
    if (notice === undefined) return;
    this.options.notify(notice).catch(this.options.onError);
  }
}
