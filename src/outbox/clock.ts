/**
 * Time as the outbox sees it: injected so tests drive pacing and backoff deterministically.
 * `schedule` returns its own cancel function, which keeps timer handles out of the port.
 */
export interface Clock {
  now(): number;
  schedule(callback: () => void, delayMs: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(callback, delayMs) {
    // Not unref'd: a caller awaiting flush() must keep the process alive until it settles.
    const timer = setTimeout(callback, Math.max(0, delayMs));
    return () => clearTimeout(timer);
  },
};
