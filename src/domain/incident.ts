import type { IncidentNumber } from './runbook.js';

/**
 * An incident's life, as pure decisions: keys (what makes two sightings the same incident),
 * which events may close which kind of incident, flapping (a symptom back soon after a resolve
 * reopens the same thread), acknowledgement and resolution. The incident service applies these
 * decisions to the store; nothing here does I/O.
 */

export type IncidentStatus = 'open' | 'resolved';

/** What closed an incident: every path goes through the same resolve, which closes its approvals. */
export type ResolveCause =
  /** A full status judged every check that showed it as passing again. */
  | 'healthy-status'
  /** Every alert that opened or joined it was resolved and a diagnosis ran. */
  | 'alerts-resolved'
  /** The VIP is back on the frontend (failover and VIP incidents). */
  | 'vip-back'
  /** `/okome resolve` by a person. */
  | 'by-hand';

/** The kinds of incident keys, each built by one function below. */
export type KeyKind = 'diagnosis' | 'failover' | 'alert';

export const incidentKeys = {
  /** A classified runbook incident: its number and the nodes it concerns (`1:pi-a`, `5`). */
  diagnosis(number: IncidentNumber | string, nodes: readonly string[]): string {
    return nodes.length > 0 ? `${number}:${nodes.join(',')}` : number;
  },
  /** The VIP not held by exactly one node: the VIP nodes in a stable order. */
  vip(vipNodes: readonly string[]): string {
    return incidentKeys.diagnosis('3', [...vipNodes].sort());
  },
  /** A VIP move away from `from`: one incident per old holder. */
  failover(from: string): string {
    return `failover:${from}`;
  },
  /** An alert the mapping does not know: one incident per alert name. */
  alert(alertname: string): string {
    return `alert:${alertname}`;
  },
} as const;

export function keyKind(key: string): KeyKind {
  if (key.startsWith('failover:')) return 'failover';
  if (key.startsWith('alert:')) return 'alert';
  return 'diagnosis';
}

/**
 * Which automatic causes may close an incident of this key. A person may always resolve one;
 * a failover or an unmapped alert has no checks a status could judge healed.
 */
export function mayResolve(key: string, cause: ResolveCause): boolean {
  if (cause === 'by-hand') return true;
  const kind = keyKind(key);
  switch (cause) {
    case 'healthy-status':
      return kind === 'diagnosis';
    case 'alerts-resolved':
      return kind === 'alert';
    case 'vip-back':
      return kind === 'failover' || key.startsWith('3:');
  }
}

export interface IncidentLife {
  readonly status: IncidentStatus;
  readonly resolvedAt: number | null;
  readonly acknowledgedBy: string | null;
  readonly acknowledgedAt: number | null;
}

export interface IncidentPolicy {
  /** A symptom seen again within this time after a resolve reopens the same incident and thread. */
  readonly reopenWithinMs: number;
}

export const DEFAULT_INCIDENT_POLICY: IncidentPolicy = { reopenWithinMs: 15 * 60_000 };

/** A symptom seen again: continue the open incident, reopen a recent one, or open a new one. */
export function onSeenAgain(
  last: IncidentLife | undefined,
  now: number,
  policy: IncidentPolicy,
): 'continue' | 'reopen' | 'open-new' {
  if (last === undefined) return 'open-new';
  if (last.status === 'open') return 'continue';
  return last.resolvedAt !== null && now - last.resolvedAt <= policy.reopenWithinMs ? 'reopen' : 'open-new';
}

export type AcknowledgeDecision =
  | { readonly verdict: 'acknowledged' }
  | { readonly verdict: 'refused'; readonly reason: string };

export function onAcknowledge(
  life: IncidentLife,
  user: string,
  mention: (user: string) => string = (u) => u,
): AcknowledgeDecision {
  if (life.status !== 'open') return { verdict: 'refused', reason: 'This incident is already resolved.' };
  if (life.acknowledgedBy !== null) {
    return {
      verdict: 'refused',
      reason:
        life.acknowledgedBy === user
          ? 'You already acknowledged this incident.'
          : `Already acknowledged by ${mention(life.acknowledgedBy)}.`,
    };
  }
  return { verdict: 'acknowledged' };
}

export type ResolveDecision =
  /** Close it: cancel what has not run, let what runs finish (and record it), then resolve. */
  { readonly verdict: 'resolve' } | { readonly verdict: 'refused'; readonly reason: string };

export function onResolve(life: IncidentLife, key: string, cause: ResolveCause): ResolveDecision {
  if (life.status !== 'open') return { verdict: 'refused', reason: 'That incident was already resolved.' };
  if (!mayResolve(key, cause)) {
    return { verdict: 'refused', reason: `a ${keyKind(key)} incident is not resolved by ${cause}` };
  }
  return { verdict: 'resolve' };
}

/** Words for the resolution, said in the thread and kept in the timeline. */
export function resolveReason(
  cause: ResolveCause,
  detail?: string,
  mention: (user: string) => string = (u) => u,
): string {
  switch (cause) {
    case 'healthy-status':
      return 'A status found its checks healthy again.';
    case 'alerts-resolved':
      return 'Every alert resolved and the diagnosis is done.';
    case 'vip-back':
      return `VIP back on ${detail ?? 'the frontend'}.`;
    case 'by-hand':
      return `Resolved by hand by ${detail === undefined ? 'someone' : mention(detail)}.`;
  }
}
