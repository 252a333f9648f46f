/**
 * The approval state machine: pure, no I/O. Every click, timer and execution milestone goes
 * through `decide()`, which returns the next record (version + 1 when it changed), what to do
 * about it, and a reason fit for an ephemeral Slack message. Persistence is compare-and-set on
 * `version`, so concurrent clicks and redelivered envelopes start the run exactly once.
 *
 *   pending ──approve (n of m)──▶ approved ──start-run──▶ running ──finish──▶ succeeded | failed
 *      │                              │                      └──crash-recovery──▶ interrupted
 *      ├──reject──▶ rejected          ├──cancel (precondition changed)──▶ cancelled
 *      ├──expire──▶ expired           └──crash-recovery──▶ interrupted (nothing ran)
 *      └──cancel──▶ cancelled
 */

export const approvalStates = [
  'pending',
  'approved',
  'running',
  'succeeded',
  'failed',
  'interrupted',
  'rejected',
  'expired',
  'cancelled',
] as const;
export type ApprovalState = (typeof approvalStates)[number];

/** Who asked for the action when an alert (not a person) opened the incident. */
export const BOT_REQUESTER = 'bot';

export interface ApproverEntry {
  readonly user: string;
  readonly at: number;
}

/** One exact command, resolved from configuration at diagnosis and pinned. */
export interface PinnedCommand {
  readonly node: string;
  readonly command: string;
}

export interface Approval {
  /** Opaque (`ap_` + 20 base32 chars); the only thing a button carries. */
  readonly id: string;
  readonly incidentId: number;
  readonly actionId: string;
  /** Node names, pinned at diagnosis. */
  readonly targets: readonly string[];
  /** What will run, exactly as shown in the confirm dialog and the audit. */
  readonly commands: readonly PinnedCommand[];
  readonly requiredApprovals: number;
  readonly approvers: readonly ApproverEntry[];
  /** A Slack user ID, or BOT_REQUESTER. */
  readonly requester: string;
  readonly state: ApprovalState;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** Who rejected it, when it was rejected. */
  readonly rejectedBy: ApproverEntry | null;
  /** One line: how it ended (or why it will never run). */
  readonly outcome: string | null;
  /** Bumped on every change: the compare-and-set key. */
  readonly version: number;
  /** What the offer does beyond its plan, shown on the card (ProposedAction.why). */
  readonly why?: string;
}

export interface NewApprovalInput {
  readonly id: string;
  readonly incidentId: number;
  readonly actionId: string;
  readonly targets: readonly string[];
  readonly commands: readonly PinnedCommand[];
  readonly requiredApprovals: number;
  readonly requester: string;
  readonly now: number;
  readonly ttlMs: number;
  readonly why?: string;
}

export function newApproval(input: NewApprovalInput): Approval {
  return {
    id: input.id,
    incidentId: input.incidentId,
    actionId: input.actionId,
    targets: [...input.targets],
    commands: [...input.commands],
    requiredApprovals: Math.max(1, Math.trunc(input.requiredApprovals)),
    approvers: [],
    requester: input.requester,
    state: 'pending',
    createdAt: input.now,
    expiresAt: input.now + input.ttlMs,
    startedAt: null,
    finishedAt: null,
    rejectedBy: null,
    outcome: null,
    version: 0,
    ...(input.why === undefined ? {} : { why: input.why }),
  };
}

/**
 * Whether a user may approve, as the approval policy decided it (see approval-policy.ts).
 * Decided outside because group membership needs I/O.
 */
export type Authorization =
  | { readonly allowed: true; readonly via: string; readonly note?: string }
  | { readonly allowed: false; readonly reason: string };

export type ApprovalEvent =
  | { readonly kind: 'click-approve'; readonly user: string; readonly authorization: Authorization }
  | { readonly kind: 'click-reject'; readonly user: string; readonly authorization: Authorization }
  | { readonly kind: 'expire' }
  | { readonly kind: 'start-run' }
  /** The re-check before running found the action no longer justified (or the incident closed). */
  | { readonly kind: 'cancel'; readonly reason: string }
  | { readonly kind: 'finish'; readonly result: 'success' | 'failure'; readonly summary: string }
  /** At start-up: whatever a crash left approved or running becomes interrupted, never re-run. */
  | { readonly kind: 'crash-recovery' }
  /**
   * The sweep: a run whose outcome could not be recorded (its run is gone, or it outlived what
   * its step timeouts allow) becomes interrupted, never re-run.
   */
  | { readonly kind: 'stuck'; readonly reason: string };

export type DecisionCode =
  // accepted
  | 'approval-recorded'
  | 'approved'
  | 'rejected'
  | 'expired'
  | 'started'
  | 'cancelled'
  | 'succeeded'
  | 'failed'
  | 'interrupted'
  // refused
  | 'not-an-approver'
  | 'requester-cannot-approve'
  | 'already-approved-by-you'
  | 'not-yet-expired'
  | 'invalid-in-state';

export type Effect =
  /** Execute now: emitted once, by the transition to `approved`. */
  | { readonly kind: 'start-run' }
  /** Re-render the approval card; `buttons: false` once nobody can click any more. */
  | { readonly kind: 'update-card'; readonly buttons: boolean }
  /** A notice in the incident thread. */
  | { readonly kind: 'thread-notice'; readonly text: string }
  /** A message only the clicking user sees. */
  | { readonly kind: 'ephemeral'; readonly user: string; readonly text: string };

export interface Decision {
  readonly verdict: 'accepted' | 'refused';
  readonly code: DecisionCode;
  /** For people: the ephemeral reply, the audit line. */
  readonly reason: string;
  /** The record to store; the same object when nothing changed. */
  readonly next: Approval;
  /** True when `next` must be written (compare-and-set against the old version). */
  readonly changed: boolean;
  readonly effects: readonly Effect[];
}

export interface DecideOptions {
  /** How to name a user in reasons; Slack passes `(u) => \`<@${u}>\``. Default: the raw ID. */
  readonly mention?: (user: string) => string;
}

const at = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** "03:14:07 UTC": a second click comes minutes after the run, the date adds nothing. */
const clockTime = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/** Why a click on an approval in this state does nothing: its state and when it got there. */
export function stateReason(a: Approval, mention: (user: string) => string = (u) => u): string {
  const ended = clockTime(a.finishedAt ?? a.createdAt);
  switch (a.state) {
    case 'pending':
      return `Waiting for ${remaining(a)} more approval(s).`;
    case 'approved':
      return 'Already approved: it is starting now.';
    case 'running':
      return `This action is already running (since ${clockTime(a.startedAt ?? a.createdAt)}).`;
    case 'succeeded':
      return `This action already ran: succeeded at ${ended} (${a.outcome ?? 'done'}).`;
    case 'failed':
      return `This action already ran: failed at ${ended} (${a.outcome ?? 'see the thread'}). Run a fresh status to try again.`;
    case 'interrupted':
      return `This action was interrupted at ${ended}: ${a.outcome ?? 'the bot stopped'}. It is never re-run automatically; run a fresh status.`;
    case 'rejected':
      return `This action was rejected${a.rejectedBy ? ` by ${mention(a.rejectedBy.user)}` : ''} at ${clockTime(a.rejectedBy?.at ?? a.finishedAt ?? a.createdAt)}; nothing ran.`;
    case 'expired':
      return `This approval expired at ${at(a.expiresAt)}; run a fresh status for new buttons.`;
    case 'cancelled':
      return `This action was not run (cancelled at ${ended}): ${a.outcome ?? 'cancelled'}. Run a fresh status.`;
  }
}

function remaining(a: Approval): number {
  return Math.max(0, a.requiredApprovals - a.approvers.length);
}

function isTwoPerson(a: Approval): boolean {
  return a.requiredApprovals >= 2;
}

/**
 * Applies one event. Never throws: an event that does not apply is a refusal with a reason,
 * and the record is returned unchanged (except that a click after expiry also expires it).
 */
export function decide(
  approval: Approval,
  event: ApprovalEvent,
  now: number,
  options: DecideOptions = {},
): Decision {
  const mention = options.mention ?? ((u: string) => u);
  const refuse = (code: DecisionCode, reason: string, user?: string): Decision => ({
    verdict: 'refused',
    code,
    reason,
    next: approval,
    changed: false,
    effects: user === undefined ? [] : [{ kind: 'ephemeral', user, text: reason }],
  });
  const accept = (
    code: DecisionCode,
    reason: string,
    change: Partial<Approval>,
    effects: readonly Effect[],
  ): Decision => ({
    verdict: 'accepted',
    code,
    reason,
    next: { ...approval, ...change, version: approval.version + 1 },
    changed: true,
    effects,
  });
  const expireNow = (): Decision => {
    const reason = `This approval expired at ${at(approval.expiresAt)} without enough approvals; nothing ran. Run a fresh status for new buttons.`;
    return accept('expired', reason, { state: 'expired', finishedAt: now, outcome: 'expired' }, [
      { kind: 'update-card', buttons: false },
    ]);
  };

  switch (event.kind) {
    case 'click-approve':
    case 'click-reject': {
      const user = event.user;
      if (approval.state !== 'pending') {
        return refuse('invalid-in-state', stateReason(approval, mention), user);
      }
      if (now >= approval.expiresAt) {
        // The click is refused, and the card catches up with the clock at the same time.
        const expired = expireNow();
        return {
          ...expired,
          verdict: 'refused',
          reason: expired.reason,
          effects: [...expired.effects, { kind: 'ephemeral', user, text: expired.reason }],
        };
      }
      if (event.kind === 'click-reject') {
        // The requester may always withdraw their own request.
        if (!event.authorization.allowed && user !== approval.requester) {
          return refuse('not-an-approver', `You may not reject this: ${event.authorization.reason}`, user);
        }
        const reason = `Rejected by ${mention(user)}; nothing ran.`;
        return accept(
          'rejected',
          reason,
          { state: 'rejected', rejectedBy: { user, at: now }, finishedAt: now, outcome: reason },
          [{ kind: 'update-card', buttons: false }],
        );
      }
      if (!event.authorization.allowed) {
        return refuse('not-an-approver', `You may not approve this: ${event.authorization.reason}`, user);
      }
      if (isTwoPerson(approval) && user === approval.requester) {
        return refuse(
          'requester-cannot-approve',
          `You requested this action and it needs ${approval.requiredApprovals} approvers other than the requester: ask someone else to approve.`,
          user,
        );
      }
      if (approval.approvers.some((a) => a.user === user)) {
        return refuse(
          'already-approved-by-you',
          `You already approved this; the same person counts once. It needs ${remaining(approval)} more approval(s) from someone else.`,
          user,
        );
      }
      const approvers = [...approval.approvers, { user, at: now }];
      const note = event.authorization.note === undefined ? '' : ` (${event.authorization.note})`;
      if (approvers.length >= approval.requiredApprovals) {
        const names = approvers.map((a) => mention(a.user)).join(' and ');
        return accept(
          'approved',
          `Approved by ${names}: running now${note}.`,
          { state: 'approved', approvers },
          [{ kind: 'update-card', buttons: false }, { kind: 'start-run' }],
        );
      }
      const left = approval.requiredApprovals - approvers.length;
      return accept(
        'approval-recorded',
        `Approval ${approvers.length} of ${approval.requiredApprovals} recorded${note}; waiting for ${left} more from someone else${
          isTwoPerson(approval) && approval.requester !== BOT_REQUESTER
            ? ` (not ${mention(approval.requester)}, who requested it)`
            : ''
        }.`,
        { approvers },
        [{ kind: 'update-card', buttons: true }],
      );
    }
    case 'expire':
      if (approval.state !== 'pending') return refuse('invalid-in-state', stateReason(approval, mention));
      if (now < approval.expiresAt) {
        return refuse('not-yet-expired', `Not expired yet: it expires at ${at(approval.expiresAt)}.`);
      }
      return expireNow();
    case 'start-run':
      if (approval.state !== 'approved') return refuse('invalid-in-state', stateReason(approval, mention));
      return accept('started', 'Running.', { state: 'running', startedAt: now }, [
        { kind: 'update-card', buttons: false },
      ]);
    case 'cancel':
      if (approval.state !== 'pending' && approval.state !== 'approved') {
        return refuse('invalid-in-state', stateReason(approval, mention));
      }
      return accept(
        'cancelled',
        `Not run: ${event.reason}`,
        { state: 'cancelled', finishedAt: now, outcome: event.reason },
        [{ kind: 'update-card', buttons: false }],
      );
    case 'finish': {
      if (approval.state !== 'running') return refuse('invalid-in-state', stateReason(approval, mention));
      const state = event.result === 'success' ? 'succeeded' : 'failed';
      return accept(state, event.summary, { state, finishedAt: now, outcome: event.summary }, [
        { kind: 'update-card', buttons: false },
      ]);
    }
    case 'stuck': {
      if (approval.state !== 'running') return refuse('invalid-in-state', stateReason(approval, mention));
      const outcome = `its outcome was never recorded (${event.reason}); it may have partly run. Check the node, then run a fresh status`;
      return accept(
        'interrupted',
        `Interrupted: ${outcome}. It will not be re-run automatically.`,
        { state: 'interrupted', finishedAt: now, outcome },
        [
          { kind: 'update-card', buttons: false },
          {
            kind: 'thread-notice',
            text: `⚠️ ${approval.actionId} on ${approval.targets.join(', ')} was interrupted: ${outcome}. It will not be re-run automatically.`,
          },
        ],
      );
    }
    case 'crash-recovery': {
      if (approval.state !== 'running' && approval.state !== 'approved') {
        return refuse('invalid-in-state', stateReason(approval, mention));
      }
      const outcome =
        approval.state === 'running'
          ? 'the bot stopped during the execution; it may have partly run. Check the node, then run a fresh status'
          : 'the bot stopped after the approval, before anything ran';
      return accept(
        'interrupted',
        `Interrupted: ${outcome}. It will not be re-run automatically.`,
        { state: 'interrupted', finishedAt: now, outcome },
        [
          { kind: 'update-card', buttons: false },
          {
            kind: 'thread-notice',
            text: `⚠️ ${approval.actionId} on ${approval.targets.join(', ')} was interrupted: ${outcome}. It will not be re-run automatically.`,
          },
        ],
      );
    }
  }
}
