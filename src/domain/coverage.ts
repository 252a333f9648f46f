import type { CheckId } from './check-result.js';
import { drillIncident, drillKinds } from './drill.js';
import { CAUSE_NUMBER, type FailoverCauseKind, failoverCauseKinds } from './failover.js';
import { keyKind } from './incident.js';
import { type IncidentNumber, incidentNumbers, runbook } from './runbook.js';
import { type ShippedAlertRule, shippedAlertRules } from './shipped-alert-rules.js';

/**
 * Runbook coverage: for each of the runbook's incidents, what detects it (the checks, the shipped
 * alert rules), what fixes it (the catalogue actions), and what the store remembers of it (last
 * seen, fixed, verified, drilled), so a team sees which incidents were never rehearsed. Pure: the
 * use case reads the store; the surfaces render the result.
 *
 * Failovers: a VIP move is stored as an incident with number '4' and a `failover:` key whatever
 * moved it, so the stored number is never counted. A failover counts for the incident its
 * explained cause belongs to (the failover classifier's table: an unreachable old holder is
 * incident 4, nginx stopped incident 1, keepalived stopped, refusing or unexplained incident 3),
 * once the diagnosis in its thread named that cause. A planned one (the bot's own action, a
 * drill) and one not explained yet count for none; the `failovers` summary counts them all.
 */

/** What the store remembers of one incident (the store's coverage row fits). */
export interface IncidentFacts {
  readonly key: string;
  readonly number: string;
  readonly lastSeenAt: number;
  readonly lastFixedAt: number | null;
  readonly lastVerifiedAt: number | null;
  /** `failover:` keys: the cause kind its diagnosis named; null when none yet. */
  readonly failoverCause: string | null;
}

/** The newest finished drill that rehearsed one incident (the store's LastDrill fits). */
export interface DrillFacts {
  readonly incidentNumber: string;
  readonly kind: string;
  readonly outcome: string;
  readonly finishedAt: number;
}

export interface CoverageInput {
  readonly incidents: readonly IncidentFacts[];
  readonly drills: readonly DrillFacts[];
  readonly generatedAt: number;
  /** Default: the rules shipped in contrib/prometheus/okome.rules.yml. */
  readonly alertRules?: readonly ShippedAlertRule[];
}

export interface IncidentCoverage {
  readonly number: IncidentNumber;
  readonly title: string;
  readonly checks: readonly CheckId[];
  readonly alertRules: readonly string[];
  /** Catalogue action ids; empty: the runbook's fix is not on the cache nodes. */
  readonly actions: readonly string[];
  /** How many incidents counted for it, and the newest sighting. */
  readonly seen: number;
  readonly lastSeen: { readonly at: number; readonly key: string } | null;
  readonly lastFixedAt: number | null;
  readonly lastVerifiedAt: number | null;
  /** The drill kinds that rehearse it (none exists for most incidents). */
  readonly drillKinds: readonly string[];
  readonly lastDrill: DrillFacts | null;
}

export interface Coverage {
  readonly generatedAt: number;
  readonly incidents: readonly IncidentCoverage[];
  readonly failovers: {
    readonly count: number;
    readonly last: { readonly at: number; readonly key: string; readonly cause: string | null } | null;
  };
}

const isCause = (kind: string | null): kind is FailoverCauseKind =>
  kind !== null && (failoverCauseKinds as readonly string[]).includes(kind);

/** The runbook incident a stored incident counts for, or undefined (see the module's note). */
export function countsFor(
  facts: Pick<IncidentFacts, 'key' | 'number' | 'failoverCause'>,
): IncidentNumber | undefined {
  const kind = keyKind(facts.key);
  if (kind === 'failover') {
    if (!isCause(facts.failoverCause) || facts.failoverCause === 'planned') return undefined;
    return CAUSE_NUMBER[facts.failoverCause];
  }
  return incidentNumbers.find((n) => n === facts.number);
}

const newest = (a: number | null, b: number | null): number | null =>
  a === null ? b : b === null ? a : Math.max(a, b);

export function buildCoverage(input: CoverageInput): Coverage {
  const rules = input.alertRules ?? shippedAlertRules;
  const byNumber = new Map<IncidentNumber, IncidentFacts[]>();
  for (const facts of input.incidents) {
    const number = countsFor(facts);
    if (number !== undefined) byNumber.set(number, [...(byNumber.get(number) ?? []), facts]);
  }
  const drillsByNumber = new Map<IncidentNumber, DrillFacts>();
  for (const drill of input.drills) {
    const number = incidentNumbers.find((n) => n === drill.incidentNumber);
    if (number === undefined) continue;
    const known = drillsByNumber.get(number);
    if (known === undefined || drill.finishedAt > known.finishedAt) drillsByNumber.set(number, drill);
  }
  const incidents = incidentNumbers.map((number): IncidentCoverage => {
    const r = runbook[number];
    const seen = byNumber.get(number) ?? [];
    const last = seen.reduce<IncidentFacts | undefined>(
      (a, b) => (a === undefined || b.lastSeenAt > a.lastSeenAt ? b : a),
      undefined,
    );
    return {
      number,
      title: r.title,
      checks: r.checks,
      alertRules: rules.filter((rule) => rule.incident === number).map((rule) => rule.alert),
      actions: r.actions,
      seen: seen.length,
      lastSeen: last === undefined ? null : { at: last.lastSeenAt, key: last.key },
      lastFixedAt: seen.reduce<number | null>((a, f) => newest(a, f.lastFixedAt), null),
      lastVerifiedAt: seen.reduce<number | null>((a, f) => newest(a, f.lastVerifiedAt), null),
      drillKinds: drillKinds.filter((k) => drillIncident[k] === number),
      lastDrill: drillsByNumber.get(number) ?? null,
    };
  });
  const failovers = input.incidents.filter((f) => keyKind(f.key) === 'failover');
  const lastFailover = failovers.reduce<IncidentFacts | undefined>(
    (a, b) => (a === undefined || b.lastSeenAt > a.lastSeenAt ? b : a),
    undefined,
  );
  return {
    generatedAt: input.generatedAt,
    incidents,
    failovers: {
      count: failovers.length,
      last:
        lastFailover === undefined
          ? null
          : { at: lastFailover.lastSeenAt, key: lastFailover.key, cause: lastFailover.failoverCause },
    },
  };
}

/** Coverage as JSON for scripts (`okome coverage --json`): times as ISO strings, "never" as null. */
export function coverageJson(coverage: Coverage): unknown {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    generatedAt: iso(coverage.generatedAt),
    incidents: coverage.incidents.map((c) => ({
      number: c.number,
      title: c.title,
      checks: c.checks,
      alertRules: c.alertRules,
      actions: c.actions,
      seen: c.seen,
      lastSeen: c.lastSeen === null ? null : { at: iso(c.lastSeen.at), key: c.lastSeen.key },
      lastFixed: iso(c.lastFixedAt),
      lastVerified: iso(c.lastVerifiedAt),
      drills: c.drillKinds,
      lastDrill:
        c.lastDrill === null
          ? null
          : { kind: c.lastDrill.kind, finishedAt: iso(c.lastDrill.finishedAt), outcome: c.lastDrill.outcome },
    })),
    failovers: {
      count: coverage.failovers.count,
      last:
        coverage.failovers.last === null
          ? null
          : { ...coverage.failovers.last, at: iso(coverage.failovers.last.at) },
    },
  };
}
