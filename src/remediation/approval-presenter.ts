import type { Approval } from '../domain/approval.js';
import type { MessagePayload } from '../outbox/payload.js';
import type { ExecutionReport } from './execute.js';
import type { ActionPlan } from './plan.js';

/**
 * How approvals look in chat: the service decides what to say and when; the chat adapter
 * (src/slack/slack-presenter.ts) renders it.
 */

export interface CardInfo {
  /** Every step, for the card's body: "remove the chaos flag, flush iptables, … on pi-a". */
  readonly label: string;
  /**
   * For the button and the confirm title: "disable chaos on pi-a" (ActionPlan.shortLabel).
   * Default: the action id in words and the approval's targets.
   */
  readonly shortLabel?: string;
  readonly risk: string;
  /** One line per step: "sudo systemctl restart nginx on pi-a (10.86.0.20)". */
  readonly details: readonly string[];
  readonly notes: readonly string[];
  readonly dryRun: boolean;
}

/** What a card shows of a plan; `globalDryRun` is the configuration's remediation.dryRun. */
export function cardInfoOf(plan: ActionPlan, globalDryRun = false): CardInfo {
  return {
    label: plan.label,
    shortLabel: plan.shortLabel,
    risk: plan.risk,
    details: plan.details,
    notes: plan.notes,
    dryRun: plan.dryRun || globalDryRun,
  };
}

export interface ApprovalPresenter {
  card(approval: Approval, info: CardInfo, options: { readonly buttons: boolean }): MessagePayload;
  execution(report: ExecutionReport, who: string): MessagePayload[];
  /** A notice in the incident thread; `text` is already in the chat's markup (mentions made by `mention`). */
  notice(text: string): MessagePayload;
  cannotOffer(actionId: string, reason: string): MessagePayload;
  /** The same fix is already offered (pending, or running) in another incident's thread. */
  offeredElsewhere(approval: Approval, incident: { readonly name: string }): MessagePayload;
  /** How to name a user in a reason ("the bot" for the bot). */
  mention(user: string): string;
  /** Outside text (check summaries, command output) in the chat's markup, escaped. */
  outside(text: string): string;
}
