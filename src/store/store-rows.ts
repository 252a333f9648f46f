import { randomBytes } from 'node:crypto';
import { type Drill, type DrillOutcome, isActive, type LastDrill } from '../domain/drill.js';
import type { SilenceMatcher } from '../domain/silence.js';
import type {
  AlertSilence,
  Incident,
  IncidentAlert,
  IncidentStatus,
  OutboxOp,
  OutboxRow,
  OutboxState,
  TimelineKind,
} from './store-port.js';

/** Rows as both stores' tables hold them (same columns in each dialect), and their mapping to the ports' types. */

export interface IncidentRow {
  id: number;
  key: string;
  number: string;
  title: string;
  status: IncidentStatus;
  channel: string;
  root_ref: string | null;
  requester: string;
  opened_at: number;
  resolved_at: number | null;
  resolved_reason: string | null;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  reopened_count: number;
  last_report: string | null;
}

export interface TimelineRow {
  id: number;
  incident_id: number;
  at: number;
  kind: TimelineKind;
  text: string;
  data: string | null;
}

export interface MessageRow {
  ref: string;
  channel: string;
  ts: string | null;
  thread_ref: string | null;
  post_state: OutboxState | null;
}

export interface OutboxDbRow {
  id: number;
  seq: number;
  channel: string;
  queue_key: string;
  op: OutboxOp;
  message_ref: string | null;
  thread_ref: string | null;
  user: string | null;
  payload: string;
  state: OutboxState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  sent_at: number | null;
  claimed_by: string | null;
  lease_until: number;
}

export interface SilenceRow {
  id: number;
  incident_id: number;
  silence_id: string;
  matchers: string;
  created_by: string;
  created_by_name: string;
  starts_at: number;
  ends_at: number;
  message_ref: string | null;
  expired_at: number | null;
  expired_by: string | null;
}

export interface AlertRow {
  fingerprint: string;
  alertname: string;
  node: string | null;
  status: 'firing' | 'resolved';
  first_seen: number;
  last_seen: number;
  count: number;
}

export function toIncident(row: IncidentRow): Incident {
  return {
    id: row.id,
    key: row.key,
    number: row.number,
    title: row.title,
    status: row.status,
    channel: row.channel,
    rootRef: row.root_ref,
    requester: row.requester,
    openedAt: row.opened_at,
    resolvedAt: row.resolved_at,
    resolvedReason: row.resolved_reason,
    acknowledgedBy: row.acknowledged_by,
    acknowledgedAt: row.acknowledged_at,
    reopenedCount: row.reopened_count,
    lastReport: row.last_report === null ? null : parseJson(row.last_report),
  };
}

export function toOutboxRow(row: OutboxDbRow): OutboxRow {
  return {
    id: row.id,
    seq: row.seq,
    channel: row.channel,
    queueKey: row.queue_key,
    op: row.op,
    messageRef: row.message_ref,
    threadRef: row.thread_ref,
    user: row.user,
    payload: row.payload,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    claimedBy: row.claimed_by,
    leaseUntil: row.lease_until,
  };
}

export function toJson(value: unknown): string | null {
  // JSON.stringify(undefined) is undefined: store it as SQL NULL.
  return JSON.stringify(value) ?? null;
}

export function parseJson(text: string): unknown {
  return JSON.parse(text);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function toSilence(r: SilenceRow): AlertSilence {
  return {
    id: r.id,
    incidentId: r.incident_id,
    silenceId: r.silence_id,
    matchers: JSON.parse(r.matchers) as SilenceMatcher[],
    createdBy: r.created_by,
    createdByName: r.created_by_name,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    messageRef: r.message_ref,
    expiredAt: r.expired_at,
    expiredBy: r.expired_by,
  };
}

export function toAlert(r: AlertRow): IncidentAlert {
  return {
    fingerprint: r.fingerprint,
    alertname: r.alertname,
    node: r.node,
    status: r.status,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    count: r.count,
  };
}

/** Time first, so refs sort roughly by creation; the random part makes them unique. */
export function newMessageRef(now: number): string {
  return `m-${Math.max(0, now).toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** A drill's record with the id its row gave it (the JSON is written before the id is known). */
export function toDrill(row: { id: number; record: string }): Drill {
  return { ...(JSON.parse(row.record) as Omit<Drill, 'id'>), id: Number(row.id) };
}

/** The columns a drill's row keeps beside its JSON record, in DRILL_COLUMNS order. */
export function drillColumns(drill: Omit<Drill, 'id'>): unknown[] {
  const { approval, phase } = drill;
  return [
    drill.kind,
    drill.incidentNumber,
    phase,
    isActive(drill) ? 1 : null,
    approval.id,
    drill.version,
    drill.requestedAt,
    drill.startedAt,
    drill.finishedAt,
    drill.outcome,
    JSON.stringify(drill),
  ];
}

export const DRILL_COLUMNS = [
  'kind',
  'incident_number',
  'phase',
  'active',
  'approval_id',
  'version',
  'requested_at',
  'started_at',
  'finished_at',
  'outcome',
  'record',
] as const;

/** Outcomes of drills that ran: what coverage counts as a rehearsal. */
export const RAN_OUTCOMES: readonly DrillOutcome[] = ['completed', 'failed', 'not-restored', 'interrupted'];

export function toLastDrill(row: {
  incident_number: string;
  id: number;
  kind: string;
  outcome: string;
  finished_at: number;
}): LastDrill {
  return {
    incidentNumber: row.incident_number as LastDrill['incidentNumber'],
    id: Number(row.id),
    kind: row.kind as LastDrill['kind'],
    outcome: row.outcome as LastDrill['outcome'],
    finishedAt: Number(row.finished_at),
  };
}

/** The last of each incident's drills, from rows in finishing order; sorted by incident. */
export function lastPerIncident(ordered: readonly LastDrill[]): LastDrill[] {
  const last = new Map<string, LastDrill>();
  for (const d of ordered) last.set(d.incidentNumber, d);
  return [...last.values()].sort((a, b) => a.incidentNumber.localeCompare(b.incidentNumber));
}
