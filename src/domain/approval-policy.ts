import type { Authorization } from './approval.js';

/**
 * Who may approve: the user IDs and user-group IDs of `slack.approvers`. Pure: group members
 * are resolved elsewhere (Slack's usergroups.users.list, cached) and passed in.
 */
export interface ApproverSet {
  readonly users: readonly string[];
  readonly groupMembers: ReadonlyMap<string, ReadonlySet<string>>;
  /** Configured groups whose members could not be listed (and no earlier list is known). */
  readonly unresolvedGroups?: readonly string[];
  /** Groups whose members come from an older list because the lookup failed just now. */
  readonly staleGroups?: readonly string[];
}

export function mayApprove(userId: string, approvers: ApproverSet): Authorization {
  if (approvers.users.includes(userId)) return { allowed: true, via: 'user' };
  for (const [group, members] of approvers.groupMembers) {
    if (members.has(userId)) {
      return approvers.staleGroups?.includes(group) === true
        ? {
            allowed: true,
            via: group,
            note: `membership of ${group} from the last known list: Slack did not answer just now`,
          }
        : { allowed: true, via: group };
    }
  }
  const unresolved = approvers.unresolvedGroups ?? [];
  if (unresolved.length > 0) {
    // Not "no": we could not tell. Say so, so that the user retries instead of giving up.
    return {
      allowed: false,
      reason: `the approver group(s) ${unresolved.join(', ')} could not be read from Slack just now; try again in a minute`,
    };
  }
  if (approvers.users.length === 0 && approvers.groupMembers.size === 0) {
    return {
      allowed: false,
      reason: 'no approvers are configured (slack.approvers in the bot configuration)',
    };
  }
  return {
    allowed: false,
    reason: 'you are not one of the configured approvers (slack.approvers users or groups)',
  };
}
