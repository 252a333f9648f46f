/**
 * What a check saw. Pure data: the diagnostics runner fills it in, the classifier and the
 * renderers read it. Check ids are stable (scripts, `/okome check <id>` and tests use them).
 */

export const checkIds = [
  'vip-owner',
  'vip-http',
  'vip-canary',
  'vip-api',
  'orch-health',
  'redis-ping',
  'redis-hit-ratio',
  'redis-budget',
  'ssh',
  'node-http',
  'service',
  'vip-addr',
  'disk',
  'memory',
  'network',
  'chaos-flag',
  'firewall',
  'streaming',
  'nginx-hit-ratio',
  'prewarm-timer',
  'keepalived-journal',
] as const;
export type CheckId = (typeof checkIds)[number];

/** ok/warn/fail = the check ran and judged; unreachable/timeout/unknown = it could not judge. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'unreachable' | 'timeout' | 'unknown';

export type Facts =
  | {
      readonly kind: 'http';
      readonly status: number;
      readonly latencyMs: number;
      readonly cacheStatus: string | undefined;
      readonly servedBy: string | undefined;
      readonly upstreamStatus: string | undefined;
    }
  | { readonly kind: 'vip-owner'; readonly holders: readonly string[]; readonly unknown: readonly string[] }
  | { readonly kind: 'vip-addr'; readonly holds: boolean }
  | { readonly kind: 'service'; readonly service: string; readonly state: string }
  /** `refused`: every command got a reset (the host is up, sshd is not). */
  | { readonly kind: 'ssh'; readonly reachable: boolean; readonly refused?: boolean }
  /** A probe that got no judgement: `refused` when the peer answered with a reset. */
  | { readonly kind: 'transport'; readonly refused: boolean }
  | { readonly kind: 'disk'; readonly usePercent: number; readonly mount: string }
  | { readonly kind: 'memory'; readonly usedPercent: number }
  | { readonly kind: 'network'; readonly down: readonly string[] }
  | { readonly kind: 'chaos-flag'; readonly present: boolean }
  | { readonly kind: 'firewall'; readonly unexpected: readonly string[] }
  | {
      readonly kind: 'streaming';
      readonly missing: readonly { readonly location: string; readonly directives: readonly string[] }[];
    }
  | {
      readonly kind: 'hit-ratio';
      readonly ratio: number | null;
      readonly hits: number;
      readonly misses: number;
      /** window = since the previous sample; cumulative = since Redis started (said so); log = nginx tail. */
      readonly source: 'window' | 'cumulative' | 'log';
      /** A window's span, and whether it starts at a sample this run took or one kept by an earlier run. */
      readonly windowMs?: number;
      readonly windowStart?: 'this-run' | 'kept';
    }
  | { readonly kind: 'redis-ping'; readonly reply: string }
  | {
      readonly kind: 'redis-budget';
      readonly budgetKeys: number;
      readonly rateLimitKeys: number;
      readonly limit: number;
      readonly runaway: readonly { readonly agent: string; readonly count: number }[];
    }
  | { readonly kind: 'prewarm-timer'; readonly state: string }
  | { readonly kind: 'keepalived-journal'; readonly transitions: readonly string[]; readonly lines: number };

export type FactsOf<K extends Facts['kind']> = Extract<Facts, { kind: K }>;

export interface CheckResult {
  /** Unique in a report: `check`, `check@node`, or `service:nginx@node`. */
  readonly id: string;
  readonly check: CheckId;
  readonly title: string;
  readonly node: string | undefined;
  readonly status: CheckStatus;
  /** One line for people. */
  readonly summary: string;
  readonly facts: Facts | undefined;
  /** Raw output worth showing in the incident thread (already capped). */
  readonly evidence: string | undefined;
  /** The error code when the check could not judge (e.g. OKOME_SSH_HOST_KEY_MISMATCH). */
  readonly errorCode: string | undefined;
  readonly durationMs: number;
}

export function resultId(check: CheckId, node?: string, service?: string): string {
  const head = service === undefined ? check : `${check}:${service}`;
  return node === undefined ? head : `${head}@${node}`;
}

/** The check could not judge: say so, never pretend it passed. */
export function couldNotJudge(status: CheckStatus): boolean {
  return status === 'unreachable' || status === 'timeout' || status === 'unknown';
}

export function factsOf<K extends Facts['kind']>(
  result: CheckResult | undefined,
  kind: K,
): FactsOf<K> | undefined {
  return result?.facts?.kind === kind ? (result.facts as FactsOf<K>) : undefined;
}
