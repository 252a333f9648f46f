/**
 * The dead-man's switch as a state machine: an always-firing alert (Watchdog) proves the
 * monitoring path works; when it has not been seen for `timeoutMs` the path is down, said once;
 * when it is seen again the path is back, said once. Pure: the caller owns time and timers.
 */

export type DeadmanState =
  | { readonly kind: 'waiting'; readonly since: number }
  | { readonly kind: 'alive'; readonly lastSeen: number }
  | { readonly kind: 'lost'; readonly lastSeen: number | undefined; readonly since: number };

export type DeadmanNotice =
  | {
      readonly kind: 'lost';
      readonly lastSeen: number | undefined;
      readonly at: number;
      readonly timeoutMs: number;
    }
  | { readonly kind: 'back'; readonly at: number; readonly downSince: number };

/** At start-up nothing is seen yet: the timeout counts from the start. */
export function initialDeadman(now: number): DeadmanState {
  return { kind: 'waiting', since: now };
}

/** A Watchdog delivery at `at`. */
export function deadmanSeen(
  state: DeadmanState,
  at: number,
): { state: DeadmanState; notice: DeadmanNotice | undefined } {
  const lastSeen = state.kind === 'alive' ? Math.max(state.lastSeen, at) : at;
  const notice: DeadmanNotice | undefined =
    state.kind === 'lost' ? { kind: 'back', at, downSince: state.since } : undefined;
  return { state: { kind: 'alive', lastSeen }, notice };
}

/** A look at the clock: the switch trips once when the Watchdog is overdue. */
export function deadmanCheck(
  state: DeadmanState,
  now: number,
  timeoutMs: number,
): { state: DeadmanState; notice: DeadmanNotice | undefined } {
  if (state.kind === 'lost') return { state, notice: undefined };
  const from = state.kind === 'alive' ? state.lastSeen : state.since;
  if (now - from < timeoutMs) return { state, notice: undefined };
  const lastSeen = state.kind === 'alive' ? state.lastSeen : undefined;
  return {
    state: { kind: 'lost', lastSeen, since: now },
    notice: { kind: 'lost', lastSeen, at: now, timeoutMs },
  };
}

/** When the next check is due (the instant the Watchdog becomes overdue); undefined once lost. */
export function deadmanDueAt(state: DeadmanState, timeoutMs: number): number | undefined {
  if (state.kind === 'lost') return undefined;
  return (state.kind === 'alive' ? state.lastSeen : state.since) + timeoutMs;
}
