/**
 * Fixed time windows as the system under test counts them (`floor(unix seconds / windowSec)`,
 * e.g. Redis rate-limit keys). A scenario that must stay inside one window waits for a fresh one
 * instead of hoping the wall clock is early in the current one.
 */
export function msIntoWindow(windowSec: number, nowMs: number = Date.now()): number {
  return nowMs % (windowSec * 1000);
}

/**
 * Resolves just after a window boundary, unless the current window began less than `graceMs`
 * ago; returns how long the scenario then has before the window ends.
 */
export async function atWindowStart(
  windowSec: number,
  options: { graceMs?: number; marginMs?: number } = {},
): Promise<number> {
  const windowMs = windowSec * 1000;
  const grace = options.graceMs ?? 3000;
  const margin = options.marginMs ?? 250;
  const into = msIntoWindow(windowSec);
  if (into > grace) {
    const wait = windowMs - into + margin;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  // Checked rather than assumed: a stalled timer on a loaded machine must not pass silently.
  const after = msIntoWindow(windowSec);
  if (after > grace + margin + 5000) {
    throw new Error(`wanted the start of a ${windowSec} s window, got ${after} ms into it`);
  }
  return windowMs - after;
}
