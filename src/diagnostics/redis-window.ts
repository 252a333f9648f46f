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
  readonly onSample?: (sample: RedisSample) => void;
  /** Keeps the last sample beyond this process: a one-shot CLI run starts its window there. */
  readonly kept?: RedisSampleStore;
}

export interface RedisSample extends RedisStats {
  readonly at: number;
}

/** Where the last sample outlives the process (redis-sample-file.ts). Failures are the store's to swallow. */
export interface RedisSampleStore {
  load(): Promise<RedisSample | undefined>;
  save(sample: RedisSample): Promise<void>;
}

type Sample = RedisSample;

export class RedisWindow {
  private last: Sample | undefined;
  private loaded = false;
  constructor(private readonly options: RedisWindowOptions) {}

  /** Records a sample as the window's start (a long-running bot keeps one recent). */
  async prime(sample: () => Promise<RedisStats>): Promise<void> {
    this.last = await this.take(sample);
  }

  private async take(sample: () => Promise<RedisStats>): Promise<Sample> {
    const taken = { ...(await sample()), at: this.options.now() };
    this.options.onSample?.(taken);
    await this.options.kept?.save(taken);
    return taken;
  }

  /** This process's last sample, else (once) the one kept by an earlier run. */
  private async previous(): Promise<{ sample: Sample; kept: boolean } | undefined> {
    if (this.last !== undefined) return { sample: this.last, kept: false };
    if (this.loaded || this.options.kept === undefined) return undefined;
    this.loaded = true;
    const kept = await this.options.kept.load();
    return kept === undefined ? undefined : { sample: kept, kept: true };
  }

  async ratio(sample: () => Promise<RedisStats>, signal: AbortSignal): Promise<FactsOf<'hit-ratio'>> {
    const { now, maxAgeMs, intervalMs, minLookups } = this.options;
    let start = await this.previous();
    const age = start === undefined ? Number.POSITIVE_INFINITY : now() - start.sample.at;
    // Only with no usable start (first ever, stale, or from the future) does a run wait.
    if (start === undefined || age > maxAgeMs || age < 0) {
      start = { sample: await this.take(sample), kept: false };
      await this.options.sleep(intervalMs, signal);
    }
    const previous = start.sample;
    const current = await this.take(sample);
    // A restarted Redis starts its counters again: the window is then its uptime. The run_id
    // says so even when the new counters have already passed the old ones.
    const reset =
      (previous.runId !== undefined && current.runId !== undefined && previous.runId !== current.runId) ||
      current.keyspaceHits < previous.keyspaceHits ||
      current.keyspaceMisses < previous.keyspaceMisses;
    const hits = reset ? current.keyspaceHits : current.keyspaceHits - previous.keyspaceHits;
    const misses = reset ? current.keyspaceMisses : current.keyspaceMisses - previous.keyspaceMisses;
    this.last = current;
    if (hits + misses >= minLookups)
      return {
        kind: 'hit-ratio',
        ratio: hits / (hits + misses),
        hits,
        misses,
        source: 'window',
        ...(reset
          ? {}
          : { windowMs: current.at - previous.at, windowStart: start.kept ? 'kept' : 'this-run' }),
      };
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
