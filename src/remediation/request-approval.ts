import { type Approval, newApproval } from '../domain/approval.js';
import { newApprovalId } from './approval-id.js';
import { type ActionPlan, pinnedCommands } from './plan.js';

export interface RequestApprovalInput {
  readonly incidentId: number;
  /** Who ran the status (a Slack user ID), or BOT_REQUESTER when an alert opened the incident. */
  readonly requester: string;
  readonly now: number;
  /** `slack.approvalTtlMs` from the configuration. */
  readonly ttlMs: number;
  /** What the offer does beyond its plan, kept with the approval for its card. */
  readonly why?: string;
  readonly random?: (size: number) => Uint8Array;
}

/** A pending approval for a plan: targets and commands pinned now, a fresh opaque id. */
export function requestApproval(plan: ActionPlan, input: RequestApprovalInput): Approval {
  return newApproval({
    id: newApprovalId(input.random),
    incidentId: input.incidentId,
    actionId: plan.actionId,
    targets: plan.nodes.map((n) => n.node),
    commands: pinnedCommands(plan),
    requiredApprovals: plan.requiredApprovals,
    requester: input.requester,
    now: input.now,
    ttlMs: input.ttlMs,
    ...(input.why === undefined ? {} : { why: input.why }),
  });
}
