import type { IncidentPresenter } from '../incidents/presenter.js';
import type { ReportPresenter } from '../incidents/report-use-case.js';
import { type PermalinkRef, permalinkTo } from '../outbox/payload.js';
import type { ApprovalPresenter } from '../remediation/approval-presenter.js';
import { renderApprovalCard, renderExecution } from './render/approval-card.js';
import {
  renderAcknowledged,
  renderAlertResolved,
  renderAlertRoot,
  renderAlertSummary,
  renderFirstDiagnosis,
  renderPlainRoot,
  renderReopened,
  renderRootWithState,
  renderVipNotice,
} from './render/incident-lifecycle.js';
import { renderEvidence, renderResolved, renderStillOpen } from './render/incident-message.js';
import { renderReportComment, renderReportMessage } from './render/incident-report-message.js';
import {
  channelLink,
  clip,
  escapeClipped,
  escapeText,
  inlineCode,
  LIMITS,
  mentionUser,
} from './render/mrkdwn.js';
import { renderDeadman, renderSilence, renderSilenceFailed } from './render/silence-message.js';
import { renderCheckList, renderProgress, renderSummary } from './render/status-message.js';

/** The use cases' messages in Block Kit: the one place that decides how the bot looks in Slack. */

export const slackPresenter: IncidentPresenter & ApprovalPresenter & ReportPresenter = {
  reportComment: renderReportComment,
  reportMessage: renderReportMessage,
  chartRefused: (title) => ({
    text: `:bar_chart: ${escapeClipped(title, 300)}: not shown, Slack refused the upload.`,
  }),
  progress: renderProgress,
  summary: (report, options) => {
    // A link to each incident's thread itself: its permalink is known only once the root is
    // posted, so the outbox fills it in at delivery (the channel is the fallback).
    const links = new Map<string, PermalinkRef>();
    const message = renderSummary(report, {
      hitRatios: options.hitRatios,
      ...(options.requestedBy === undefined ? {} : { requestedBy: options.requestedBy }),
      threadHint: (incident) => {
        const thread = options.threadOf(incident);
        if (thread === undefined) return undefined;
        const link = permalinkTo(thread.ref, { label: 'thread', fallback: channelLink(thread.channel) });
        links.set(thread.ref, link);
        return `Thread: ${link.placeholder}`;
      },
    });
    return links.size === 0 ? message : { ...message, links: [...links.values()] };
  },
  checkList: renderCheckList,
  incidentRoot: (incident, report, state) => renderRootWithState(incident, report, state),
  plainRoot: renderPlainRoot,
  evidence: renderEvidence,
  firstDiagnosis: renderFirstDiagnosis,
  stillPresent: renderStillOpen,
  reopened: renderReopened,
  resolved: (record, reason) => renderResolved(record, reason),
  acknowledged: renderAcknowledged,
  alertRoot: renderAlertRoot,
  alertResolved: renderAlertResolved,
  alertSummary: renderAlertSummary,
  vipNotice: renderVipNotice,
  silence: renderSilence,
  silenceFailed: renderSilenceFailed,
  deadman: renderDeadman,
  card: (approval, info, options) => renderApprovalCard(approval, info, options),
  execution: renderExecution,
  notice: (text) => ({ text: clip(text, LIMITS.messageText) }),
  cannotOffer: (actionId, reason) => ({
    text: clip(`Cannot offer ${escapeText(actionId)}: ${escapeText(reason)}`, LIMITS.messageText),
  }),
  offeredElsewhere: (approval, incident) => ({
    text: clip(
      `:point_right: ${inlineCode(approval.actionId, 200)} on ${approval.targets.map(escapeText).join(', ')} is the fix here too, and it is already offered (${escapeText(approval.state)}) in the thread of *${escapeText(incident.name)}*: one card, approve it there. Approval \`${escapeText(approval.id)}\`.`,
      LIMITS.messageText,
    ),
  }),
  mention: mentionUser,
  outside: (text) => escapeClipped(text, 1000),
};
