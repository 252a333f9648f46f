import type { CheckResult } from '../domain/check-result.js';
import type { Incident, ProposedAction, VipState } from '../domain/classify.js';
import type { StatusReport } from '../domain/report.js';
import { type IncidentRecovery, isWindowed, restsOnWindows } from '../domain/windowed-evidence.js';
import { ErrorCode } from '../errors.js';

/**
 * Before running an approved action: still safe, still open? Safe: the guard rules hold in a
 * report re-run just now (the orchestrator in it and not the cause, no golden rule holding the
 * action back, the targets' host keys as pinned, the VIP holder as diagnosed when it matters).
 * Open: the incident's instantaneous symptoms are still there; a symptom measured over a window
 * (a hit ratio, the current rate-limit minute) is not re-measured over the re-check's
 * milliseconds but judged on the stored diagnosis and the samples since (`recovery`).
 * Pure; the caller re-runs a full status (golden rule 1 is judged before any cache node).
 */

export interface PreconditionInput {
  /** As pinned at diagnosis. */
  readonly proposed: ProposedAction;
  readonly diagnosis: StatusReport;
  readonly current: StatusReport;
  /** The action may move the VIP (it restarts keepalived): the holder must be as diagnosed. */
  readonly vipRelated?: boolean;
  /**
   * Whether an incident's windowed symptoms have recovered over the history since the
   * diagnosis. Without it nothing is proven recovered (the action still answers the diagnosis).
   */
  readonly recovery?: (origin: Incident) => IncidentRecovery;
}

export type PreconditionResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly changed: readonly string[] };

export function describeVip(state: VipState): string {
  switch (state.kind) {
    case 'single':
      return `held by ${state.holder}`;
    case 'none':
      return 'held by no node';
    case 'split':
      return `held by ${state.holders.join(' and ')} (split brain)`;
    case 'unknown':
      return `unknown (${state.reason})`;
  }
}

const proposes = (actionId: string, node: string) => (a: ProposedAction) =>
  a.actionId === actionId && a.nodes.includes(node);

function byId(report: StatusReport): Map<string, CheckResult> {
  return new Map(report.checks.map((c) => [c.id, c]));
}

/**
 * The instantaneous evidence of the proposing incident whose verdict moved: named by check and
 * verdict only. Windowed checks are left out (they are judged on their history) and so are
 * numbers that drifted under an unchanged verdict (latencies, counts): they change nothing.
 */
function evidenceChanges(origin: Incident, before: StatusReport, after: StatusReport): string[] {
  const was = byId(before);
  const now = byId(after);
  return origin.evidence.flatMap((id) => {
    const a = was.get(id);
    const b = now.get(id);
    if (a === undefined || isWindowed(a.check)) return [];
    if (b === undefined) return [`${id} was not re-checked`];
    return a.status === b.status ? [] : [`${id} was ${a.status}, now ${b.status}`];
  });
}

export function checkPrecondition(input: PreconditionInput): PreconditionResult {
  const { proposed, diagnosis, current } = input;
  const changed: string[] = [];
  const add = (line: string) => {
    if (!changed.includes(line)) changed.push(line);
  };

  if (!current.checks.some((c) => c.check === 'orch-health')) {
    add("the re-check did not include the orchestrator's health (golden rule 1): re-run a full status");
  }
  const upstream = current.incidents.find((i) => i.number === '5');
  if (upstream !== undefined) {
    add(
      `the orchestrator is now the cause (incident 5: ${upstream.summary}): golden rule 1, do not touch cache nodes`,
    );
  }

  for (const node of proposed.nodes) {
    const mismatch = current.checks.find(
      (c) => c.node === node && c.errorCode === ErrorCode.SshHostKeyMismatch,
    );
    if (mismatch !== undefined) {
      add(
        `${node}'s SSH host key no longer matches the pinned key (${mismatch.summary}): nothing is sent to it`,
      );
    }
  }

  const origins = diagnosis.incidents.filter((i) =>
    proposed.nodes.some((n) => i.actions.some(proposes(proposed.actionId, n))),
  );
  if (origins.length === 0) {
    add(`the diagnosis did not propose ${proposed.actionId} on ${proposed.nodes.join(', ')}`);
  }

  for (const node of proposed.nodes) {
    if (current.incidents.some((i) => i.actions.some(proposes(proposed.actionId, node)))) continue;
    const held = current.incidents.find((i) => i.held?.actions.some(proposes(proposed.actionId, node)));
    if (held?.held !== undefined) {
      add(`${proposed.actionId} on ${node} is now held back: ${held.held.reason}`);
      continue;
    }
    const origin = origins.find((i) => i.actions.some(proposes(proposed.actionId, node))) ?? origins[0];
    const what = origin === undefined ? 'the incident' : `incident ${origin.number} (${origin.title})`;
    // A windowed symptom is still there until its history proves a recovery: a rolled-over
    // rate-limit minute or a re-check's few milliseconds of lookups are not evidence.
    if (origin !== undefined && restsOnWindows(origin, diagnosis.checks)) {
      const recovery = input.recovery?.(origin);
      if (recovery?.recovered === true) add(`${what} has recovered: ${recovery.details.join('; ')}`);
      continue;
    }
    const evidence = origin === undefined ? [] : evidenceChanges(origin, diagnosis, current);
    add(`${what} is no longer present on ${node}${evidence.length > 0 ? `: ${evidence.join('; ')}` : ''}`);
  }

  const vipRelated = input.vipRelated === true || origins.some((i) => i.number === '3');
  if (vipRelated) {
    const before = describeVip(diagnosis.vip.state);
    const after = describeVip(current.vip.state);
    if (before !== after)
      add(`the VIP holder changed since the diagnosis: it was ${before}, it is now ${after}`);
  }

  return changed.length === 0 ? { ok: true } : { ok: false, changed };
}
