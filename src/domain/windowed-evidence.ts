import type { CheckId, CheckResult } from './check-result.js';
import type { Incident } from './classify.js';

/**
 * Evidence measured over a time window (a hit ratio, the current rate-limit window's counters)
 * is judged over a history of samples with explicit timestamps, never re-measured over the few
 * milliseconds of a re-check: a symptom counts as recovered only when the history since the
 * incident was last seen shows it healthy for a whole recovery span. A quiet rate-limit minute
 * or an idle cache proves nothing. Pure: the history and `now` come in as arguments.
 */

/** Checks whose result stands for a window of time rather than an instant. */
export const windowedChecks: ReadonlySet<CheckId> = new Set([
  'redis-hit-ratio',
  'redis-budget',
  'nginx-hit-ratio',
]);

export function isWindowed(check: CheckId): boolean {
  return windowedChecks.has(check);
}

/** Redis INFO keyspace counters: cumulative since Redis started (a restart resets them). */
export interface CounterSample {
  readonly at: number;
  readonly hits: number;
  readonly misses: number;
}

/** One look at the rate-limit counters of the window current at `at`. */
export interface BudgetSample {
  readonly at: number;
  readonly window: number;
  /** Agents whose counter was at or over the limit, with their counts. */
  readonly atLimit: readonly { readonly agent: string; readonly count: number }[];
  readonly limit: number;
}

/** A ratio already judged over its own window (nginx's log tail), per node. */
export interface RatioSample {
  readonly at: number;
  readonly node: string;
  readonly ratio: number | null;
  readonly lookups: number;
}

export interface EvidenceHistory {
  readonly counters: readonly CounterSample[];
  readonly budgets: readonly BudgetSample[];
  readonly nginxRatios: readonly RatioSample[];
}

export const emptyHistory: EvidenceHistory = { counters: [], budgets: [], nginxRatios: [] };

export interface RecoveryPolicy {
  /** The span the symptom must have been healthy for, measured back from the newest sample. */
  readonly recoveryMs: number;
  readonly redisHitRatio: number;
  readonly nginxHitRatio: number;
  /** Fewer lookups than this over the span: too little traffic to call it a recovery. */
  readonly minLookups: number;
}

export type Recovery =
  | { readonly recovered: true; readonly detail: string }
  | { readonly recovered: false; readonly detail: string };

export interface RecoveryInput {
  readonly history: EvidenceHistory;
  readonly now: number;
  /** When the incident was last seen (its stored diagnosis): a recovery starts after it. */
  readonly since: number;
  readonly policy: RecoveryPolicy;
}

const pct = (r: number) => `${(r * 100).toFixed(0)} %`;
const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

/**
 * The span a recovery is judged over: from the newest sample at least `recoveryMs` before the
 * newest one, never before the incident was last seen. Undefined (and why) when the history
 * since then is shorter than the span.
 */
function span<T extends { readonly at: number }>(
  samples: readonly T[],
  input: RecoveryInput,
  what: string,
): { readonly within: readonly T[]; readonly from: number; readonly to: number } | string {
  const since = samples.filter((s) => s.at >= input.since && s.at <= input.now).sort((a, b) => a.at - b.at);
  const last = since.at(-1);
  if (last === undefined) return `no ${what} sample since the incident was last seen`;
  const { recoveryMs } = input.policy;
  const anchor = since.filter((s) => last.at - s.at >= recoveryMs).at(-1);
  if (anchor === undefined) {
    const first = since[0] ?? last;
    return `${what} seen for only ${secs(last.at - first.at)} since the incident was last seen (recovery needs ${secs(recoveryMs)})`;
  }
  return { within: since.filter((s) => s.at >= anchor.at), from: anchor.at, to: last.at };
}

/** The hit ratio over the span, from cumulative counters (a counter that went down = a restart). */
export function redisHitRatioRecovery(input: RecoveryInput): Recovery {
  const s = span(input.history.counters, input, 'Redis hit ratio');
  if (typeof s === 'string') return { recovered: false, detail: s };
  let hits = 0;
  let misses = 0;
  for (let i = 1; i < s.within.length; i++) {
    const a = s.within[i - 1];
    const b = s.within[i];
    if (a === undefined || b === undefined) continue;
    const reset = b.hits < a.hits || b.misses < a.misses;
    hits += reset ? b.hits : b.hits - a.hits;
    misses += reset ? b.misses : b.misses - a.misses;
  }
  const over = secs(s.to - s.from);
  const lookups = hits + misses;
  if (lookups < input.policy.minLookups) {
    return {
      recovered: false,
      detail: `Redis hit ratio: only ${lookups} lookup(s) in the last ${over}: too little traffic to call it recovered`,
    };
  }
  const ratio = hits / lookups;
  const threshold = input.policy.redisHitRatio;
  return ratio >= threshold
    ? { recovered: true, detail: `Redis hit ratio ${pct(ratio)} over the last ${over} (${lookups} lookups)` }
    : {
        recovered: false,
        detail: `Redis hit ratio still ${pct(ratio)} over the last ${over} (below ${pct(threshold)})`,
      };
}

/**
 * No rate-limit counter at its limit in any window seen over the span. Each look stands for
 * the window it was taken in, so the look that anchors the span (often the diagnosis's own)
 * is not part of it.
 */
export function budgetRecovery(input: RecoveryInput): Recovery {
  const s = span(input.history.budgets, input, 'the agent budgets');
  if (typeof s === 'string') return { recovered: false, detail: s };
  const over = secs(s.to - s.from);
  const looks = s.within.filter((b) => b.at > s.from);
  const runaway = looks.filter((b) => b.atLimit.length > 0).at(-1);
  if (runaway !== undefined) {
    const agents = runaway.atLimit.map((a) => `${a.agent} ${a.count}/${runaway.limit}`).join(', ');
    return {
      recovered: false,
      detail: `a budget counter was at its limit ${secs(s.to - runaway.at)} before the latest sample (${agents})`,
    };
  }
  const windows = new Set(looks.map((b) => b.window)).size;
  return { recovered: true, detail: `no budget counter at its limit in ${windows} window(s) over ${over}` };
}

/** Every log-tail ratio seen over the span on this node was judged and healthy. */
export function nginxHitRatioRecovery(input: RecoveryInput, node: string): Recovery {
  const mine = input.history.nginxRatios.filter((r) => r.node === node);
  const s = span(mine, input, `nginx hit ratio on ${node}`);
  if (typeof s === 'string') return { recovered: false, detail: s };
  const over = secs(s.to - s.from);
  const { nginxHitRatio: threshold, minLookups } = input.policy;
  const bad = s.within.find((r) => r.ratio === null || r.lookups < minLookups || r.ratio < threshold);
  if (bad !== undefined) {
    return {
      recovered: false,
      detail:
        bad.ratio === null || bad.lookups < minLookups
          ? `nginx hit ratio on ${node}: too few lookups to judge in the last ${over}`
          : `nginx hit ratio on ${node} still ${pct(bad.ratio)} in the last ${over} (below ${pct(threshold)})`,
    };
  }
  return { recovered: true, detail: `nginx hit ratio on ${node} healthy over the last ${over}` };
}

/** A windowed check from a report, judged over the history. */
export function windowedRecovery(check: Pick<CheckResult, 'check' | 'node'>, input: RecoveryInput): Recovery {
  switch (check.check) {
    case 'redis-hit-ratio':
      return redisHitRatioRecovery(input);
    case 'redis-budget':
      return budgetRecovery(input);
    case 'nginx-hit-ratio':
      return check.node === undefined
        ? { recovered: false, detail: 'nginx hit ratio without a node' }
        : nginxHitRatioRecovery(input, check.node);
    default:
      return { recovered: true, detail: `${check.check} is not windowed` };
  }
}

/** The incident's evidence that was unhealthy when it was seen and is measured over a window. */
export function windowedSymptoms(incident: Incident, seen: readonly CheckResult[]): CheckResult[] {
  const byId = new Map(seen.map((c) => [c.id, c]));
  return incident.evidence.flatMap((id) => {
    const c = byId.get(id);
    return c !== undefined && c.status !== 'ok' && isWindowed(c.check) ? [c] : [];
  });
}

/**
 * The incident rests on windowed evidence alone: every symptom it was seen with is measured
 * over a window, so whether it is still there is a question for the history, not an instant.
 */
export function restsOnWindows(incident: Incident, seen: readonly CheckResult[]): boolean {
  const byId = new Map(seen.map((c) => [c.id, c]));
  const symptoms = incident.evidence.flatMap((id) => {
    const c = byId.get(id);
    return c !== undefined && c.status !== 'ok' ? [c] : [];
  });
  return symptoms.length > 0 && symptoms.every((c) => isWindowed(c.check));
}

export interface IncidentRecovery {
  readonly recovered: boolean;
  /** What recovered and what did not, one line per windowed symptom. */
  readonly details: readonly string[];
}

/** Every windowed symptom the incident was seen with has recovered over the history. */
export function incidentRecovery(
  incident: Incident,
  seen: readonly CheckResult[],
  input: RecoveryInput,
): IncidentRecovery {
  const judged = windowedSymptoms(incident, seen).map((c) => windowedRecovery(c, input));
  return { recovered: judged.every((j) => j.recovered), details: judged.map((j) => j.detail) };
}

/** Drops what no recovery judged at `now` can look at any more (older than `keepMs`). */
export function pruneHistory(history: EvidenceHistory, now: number, keepMs: number): EvidenceHistory {
  const keep = <T extends { readonly at: number }>(xs: readonly T[]) =>
    xs.filter((x) => now - x.at <= keepMs);
  return {
    counters: keep(history.counters),
    budgets: keep(history.budgets),
    nginxRatios: keep(history.nginxRatios),
  };
}
