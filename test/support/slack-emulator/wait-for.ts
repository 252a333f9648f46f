// Polls until a probe yields something, for asserting on what arrives asynchronously.

export type Found<T> = Exclude<T, false | null | undefined>;

/**
 * Resolves with the probe's first value that is not false/null/undefined. A probe may throw
 * (an `expect` inside, say): polling goes on, and the last error is quoted on timeout.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs = 2000,
  description = 'condition',
  intervalMs = 20,
): Promise<Found<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== false && value !== null && value !== undefined) return value as Found<T>;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`waitFor timed out after ${timeoutMs} ms waiting for ${description}${cause}`, {
        cause: lastError,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
