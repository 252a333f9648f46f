import type { IncidentCoverageRow } from './store-port.js';

/**
 * The coverage read (store.incidentCoverage) in both dialects: one row per incident with the
 * newest times the runbook coverage needs, aggregated by the database (timeline_by_incident
 * and approvals_by_incident serve the subqueries), so no timeline leaves the store.
 *
 * - last seen: the newest diagnosis, alert or notice in its timeline, else its opening;
 * - last fixed: the newest end of one of its approvals that succeeded (its steps ran and its
 *   verification passed);
 * - last verified: the newest passing verification of a fix (an `outcome` whose verification
 *   says ok) or resolve that a judgement made (a status found its checks healthy, the VIP back);
 * - failover cause: for `failover:` keys, the cause the newest diagnosis in its thread named.
 */

export interface IncidentCoverageSqlRow {
  readonly id: number | string;
  readonly key: string;
  readonly number: string;
  readonly opened_at: number | string;
  readonly last_seen_at: number | string | null;
  readonly last_fixed_at: number | string | null;
  readonly last_verified_at: number | string | null;
  readonly failover_cause: string | null;
}

export const INCIDENT_COVERAGE_SQL = {
  sqlite: `
    SELECT i.id, i.key, i.number, i.opened_at,
      (SELECT MAX(t.at) FROM timeline t
        WHERE t.incident_id = i.id AND t.kind IN ('diagnosis', 'alert', 'notice')) AS last_seen_at,
      (SELECT MAX(json_extract(a.record, '$.finishedAt')) FROM approvals a
        WHERE a.incident_id = i.id AND a.state = 'succeeded') AS last_fixed_at,
      (SELECT MAX(t.at) FROM timeline t
        WHERE t.incident_id = i.id AND (
          (t.kind = 'outcome' AND json_extract(t.data, '$.verification.ok') = 1)
          OR (t.kind = 'resolved' AND json_extract(t.data, '$.cause') IN ('healthy-status', 'vip-back'))
        )) AS last_verified_at,
      CASE WHEN i.key LIKE 'failover:%' THEN
        (SELECT json_extract(t.data, '$.failover.cause.kind') FROM timeline t
          WHERE t.incident_id = i.id AND t.kind = 'diagnosis' ORDER BY t.at DESC, t.id DESC LIMIT 1)
      END AS failover_cause
    FROM incidents i ORDER BY i.id`,
  postgres: `
    SELECT i.id, i.key, i.number, i.opened_at,
      (SELECT MAX(t.at) FROM timeline t
        WHERE t.incident_id = i.id AND t.kind IN ('diagnosis', 'alert', 'notice')) AS last_seen_at,
      (SELECT MAX((a.record::jsonb ->> 'finishedAt')::bigint) FROM approvals a
        WHERE a.incident_id = i.id AND a.state = 'succeeded') AS last_fixed_at,
      (SELECT MAX(t.at) FROM timeline t
        WHERE t.incident_id = i.id AND (
          (t.kind = 'outcome' AND (t.data::jsonb #>> '{verification,ok}') = 'true')
          OR (t.kind = 'resolved' AND (t.data::jsonb ->> 'cause') IN ('healthy-status', 'vip-back'))
        )) AS last_verified_at,
      CASE WHEN i.key LIKE 'failover:%' THEN
        (SELECT t.data::jsonb #>> '{failover,cause,kind}' FROM timeline t
          WHERE t.incident_id = i.id AND t.kind = 'diagnosis' ORDER BY t.at DESC, t.id DESC LIMIT 1)
      END AS failover_cause
    FROM incidents i ORDER BY i.id`,
} as const;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

/** A row as both dialects return it (PostgreSQL's BIGINTs arrive as strings). */
export function toIncidentCoverage(row: IncidentCoverageSqlRow): IncidentCoverageRow {
  return {
    id: Number(row.id),
    key: row.key,
    number: row.number,
    openedAt: Number(row.opened_at),
    lastSeenAt: Math.max(Number(row.opened_at), num(row.last_seen_at) ?? 0),
    lastFixedAt: num(row.last_fixed_at),
    lastVerifiedAt: num(row.last_verified_at),
    failoverCause: row.failover_cause,
  };
}
