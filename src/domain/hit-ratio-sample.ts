import { z } from 'zod';
import type { CheckResult } from './check-result.js';

/**
 * One Redis hit ratio as a diagnosis, a verification or a healing status judged it: kept in the
 * incident's timeline entry (`data.hitRatio`) so the post-incident report can chart the ratio
 * over the incident. One sample per judgement, never per probe tick: the timeline stays small,
 * and the chart shows what the bot decided on.
 */
export interface HitRatioSample {
  /** 0–1. */
  readonly ratio: number;
  readonly hits: number;
  readonly misses: number;
  /** window = since the previous INFO sample; cumulative = since Redis started (too little traffic). */
  readonly source: 'window' | 'cumulative';
  readonly windowMs?: number;
}

export const hitRatioSampleSchema = z.object({
  ratio: z.number().min(0).max(1),
  hits: z.number().nonnegative(),
  misses: z.number().nonnegative(),
  source: z.enum(['window', 'cumulative']),
  windowMs: z.number().nonnegative().optional(),
});

/** The Redis hit ratio the checks measured; undefined when none ran or it had no lookups to judge. */
export function hitRatioSampleOf(
  checks: readonly Pick<CheckResult, 'check' | 'facts'>[],
): HitRatioSample | undefined {
  const facts = checks.find((c) => c.check === 'redis-hit-ratio')?.facts;
  if (facts?.kind !== 'hit-ratio' || facts.ratio === null || facts.source === 'log') return undefined;
  return {
    ratio: facts.ratio,
    hits: facts.hits,
    misses: facts.misses,
    source: facts.source,
    ...(facts.windowMs === undefined ? {} : { windowMs: facts.windowMs }),
  };
}
