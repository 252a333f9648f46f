import { z } from 'zod';
import { type CheckResult, type CheckStatus, checkIds } from './check-result.js';
import type { Incident, Isolation, VipState } from './classify.js';
import { type FailoverCause, failoverCauseKinds } from './failover.js';
import { incidentNumbers } from './runbook.js';

/**
 * The status report as `okome status --json` prints it and the bot stores it. Versioned:
 * scripts depend on it. Bump REPORT_SCHEMA_VERSION on any incompatible change (an added
 * optional field such as `isolation` is compatible: old reports still parse).
 */
export const REPORT_SCHEMA_VERSION = 1;

const status = z.enum(['ok', 'warn', 'fail', 'unreachable', 'timeout', 'unknown']);

export const checkResultSchema = z.object({
  id: z.string(),
  check: z.enum(checkIds),
  title: z.string(),
  node: z.string().optional(),
  status,
  summary: z.string(),
  facts: z
    .record(z.string(), z.unknown())
    .and(z.object({ kind: z.string() }))
    .optional(),
  evidence: z.string().optional(),
  errorCode: z.string().optional(),
  durationMs: z.number().int().nonnegative(),
});

const proposedAction = z.object({ actionId: z.string(), nodes: z.array(z.string()) });

export const incidentSchema = z.object({
  number: z.enum(incidentNumbers),
  key: z.string(),
  title: z.string(),
  nodes: z.array(z.string()),
  evidence: z.array(z.string()),
  summary: z.string(),
  actions: z.array(proposedAction),
  held: z.object({ actions: z.array(proposedAction), reason: z.string() }).optional(),
  advice: z.array(z.string()),
  followUps: z.array(z.string()),
});

export const vipStateSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('single'), holder: z.string() }),
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('split'), holders: z.array(z.string()) }),
  z.object({ kind: z.literal('unknown'), reason: z.string() }),
]);

export const isolationSchema = z.object({
  summary: z.string(),
  detail: z.string(),
  evidence: z.array(z.string()),
  advice: z.array(z.string()),
});

/** A VIP move's diagnosis: who lost the VIP to whom, why, and whether it had settled. */
export const failoverSchema = z.object({
  from: z.string(),
  to: z.string(),
  /** False when the settle time ran out first (the reason says what was still moving). */
  settled: z.boolean(),
  settleNote: z.string().optional(),
  cause: z.object({
    kind: z.enum(failoverCauseKinds),
    node: z.string(),
    summary: z.string(),
    evidence: z.array(z.string()),
  }),
});

export interface FailoverReport {
  readonly from: string;
  readonly to: string;
  readonly settled: boolean;
  readonly settleNote?: string;
  readonly cause: FailoverCause;
}

export const statusReportSchema = z.object({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  kind: z.enum(['status', 'validate', 'check']),
  startedAt: z.iso.datetime(),
  durationMs: z.number().int().nonnegative(),
  vip: z.object({ address: z.string(), state: vipStateSchema }),
  healthy: z.boolean(),
  /** false when no check could judge anything (exit 3). */
  diagnosable: z.boolean(),
  counts: z.object({
    ok: z.number(),
    warn: z.number(),
    fail: z.number(),
    unreachable: z.number(),
    timeout: z.number(),
    unknown: z.number(),
  }),
  /** Present when the bot reached nothing: then `incidents` is empty and the exit code is 3. */
  isolation: isolationSchema.optional(),
  /** Present on the diagnosis of a VIP move (a failover incident's stored report). */
  failover: failoverSchema.optional(),
  incidents: z.array(incidentSchema),
  checks: z.array(checkResultSchema),
});

/** The report as `--json` readers see it (undefined fields are absent). */
export type StatusReportJson = z.infer<typeof statusReportSchema>;

export interface StatusReport {
  readonly schemaVersion: typeof REPORT_SCHEMA_VERSION;
  readonly kind: 'status' | 'validate' | 'check';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly vip: { readonly address: string; readonly state: VipState };
  readonly healthy: boolean;
  readonly diagnosable: boolean;
  readonly counts: Readonly<Record<CheckStatus, number>>;
  readonly isolation?: Isolation;
  readonly failover?: FailoverReport;
  readonly incidents: readonly Incident[];
  readonly checks: readonly CheckResult[];
}

/**
 * The one reader of a stored report (an incident's last diagnosis): validated, or undefined
 * when it is missing, from an older schema or damaged, so callers treat it as "not known".
 */
export function readStoredReport(value: unknown): StatusReport | undefined {
  const parsed = statusReportSchema.safeParse(value);
  return parsed.success ? (parsed.data as unknown as StatusReport) : undefined;
}

/** The classified incident with this key in a stored report, if the report is readable. */
export function incidentInReport(value: unknown, key: string): Incident | undefined {
  return readStoredReport(value)?.incidents.find((i) => i.key === key);
}
