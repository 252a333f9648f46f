import type { FactsOf } from '../domain/check-result.js';
import type { RedisStats } from '../probes/ports.js';

/**
 * Redis's keyspace_hits/misses are cumulative since the server started, so a ratio over them
 * hides a storm that began a minute ago. This keeps the previous sample and reports the ratio
 * over the window since; with no recent sample it takes two a short interval apart, and when
 * too little traffic passed in between it falls back to the cumulative ratio and says so.
 */
export interface RedisWindowOptions {
  /** A previous sample older than this is stale. */
  readonly maxAgeMs: number;
  /** Interval between the two samples of a cold start. */
  readonly intervalMs: number;
  /** Fewer lookups than this in the window: the ratio would be noise. */
  readonly minLookups: number;
  readonly now: () => number;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Every INFO sample taken, with its time: the history recoveries are judged over. */
  readonly onSample?: (sample: RedisStats & { readonly at: number }) => void;
}

interface Sample extends RedisStats {
  readonly at: number;
}

export class RedisWindow {
  private last: Sample | undefined;
  constructor(private readonly options: RedisWindowOptions) {}

  /** Records a sample as the window's start (a long-running bot keeps one recent). */
  async prime(sample: () => Promise<RedisStats>): Promise<void> {
    this.last = await this.take(sample);
  }

  private async take(sample: () => Promise<RedisStats>): Promise<Sample> {
    const taken = { ...(await sample()), at: this.options.now() };
    this.options.onSample?.(taken);
    return taken;
  }

  async ratio(sample: () => Promise<RedisStats>, signal: AbortSignal): Promise<FactsOf<'hit-ratio'>> {
    const { now, maxAgeMs, intervalMs, minLookups } = this.options;
    let previous = this.last;
    if (previous === undefined || now() - previous.at > maxAgeMs) {
      previous = await this.take(sample);
      await this.options.sleep(intervalMs, signal);
    }
    const current = await this.take(sample);
    // A restarted Redis resets its counters: the window starts again from zero.
    const reset =
      current.keyspaceHits < previous.keyspaceHits || current.keyspaceMisses < previous.keyspaceMisses;
    const hits = reset ? current.keyspaceHits : current.keyspaceHits - previous.keyspaceHits;
    const misses = reset ? current.keyspaceMisses : current.keyspaceMisses - previous.keyspaceMisses;
    this.last = current;
    if (hits + misses >= minLookups)
      return { kind: 'hit-ratio', ratio: hits / (hits + misses), hits, misses, source: 'window' };
    const total = current.keyspaceHits + current.keyspaceMisses;
    return {
      kind: 'hit-ratio',
      ratio: total === 0 ? null : current.keyspaceHits / total,
      hits: current.keyspaceHits,
      misses: current.keyspaceMisses,
      source: 'cumulative',
    };
  }
}
