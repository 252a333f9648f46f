import type { KnownBlock } from '@slack/types';
import { ACK_PREFIX } from '../../domain/action-ids.js';
import type { Incident } from '../../domain/classify.js';
import type { StatusReport } from '../../domain/report.js';
import type { RootState, VipNotice } from '../../incidents/presenter.js';
import type { IncidentAlert, Incident as IncidentRecord } from '../../store/store-port.js';
import { renderIncidentRoot } from './incident-message.js';
import { clip, escapeClipped, escapeText, inlineCode, LIMITS, mentionUser as mention } from './mrkdwn.js';
import { silenceButtons } from './silence-message.js';
import type { SlackMessage } from './status-message.js';

/**
 * The incident's life in Slack: its root with the lifecycle (acknowledged, resolved) and the
 * Ack button, the messages of reopening and acknowledging, alert and VIP notices.
 */

const time = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;
const section = (text: string): KnownBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) },
});
const context = (text: string): KnownBlock => ({
  type: 'context',
  elements: [{ type: 'mrkdwn', text: clip(text, LIMITS.sectionText) }],
});
const plain = (text: string): SlackMessage => ({
  text: clip(text, LIMITS.messageText),
  blocks: [section(text)],
});

/** The lifecycle lines and the Ack button under a root. */
function lifecycleBlocks(state: RootState): KnownBlock[] {
  const incidentId = state.incidentId;
  const blocks: KnownBlock[] = [];
  if (state.acknowledged !== undefined) {
    blocks.push(
      context(`:eyes: Acknowledged by ${mention(state.acknowledged.by)} at ${time(state.acknowledged.at)}`),
    );
  }
  if (state.ackButton) {
    blocks.push({
      type: 'actions',
      block_id: `okome-ack-${incidentId}`,
      elements: [
        {
          type: 'button',
          action_id: `${ACK_PREFIX}${incidentId}`,
          value: String(incidentId),
          text: { type: 'plain_text', text: 'Ack: I am on it' },
        },
      ],
    });
  }
  return blocks;
}

export function renderRootWithState(
  incident: Incident,
  report: StatusReport,
  state: RootState,
): SlackMessage {
  const extraBlocks = lifecycleBlocks(state);
  // The resolved form keeps the title and evidence, struck, with "Resolved at … — reason".
  return state.status === 'resolved'
    ? renderIncidentRoot(incident, report, {
        status: 'resolved',
        resolvedAt: state.resolvedAt ?? 0,
        reason: state.reason ?? 'resolved',
        extraBlocks,
      })
    : renderIncidentRoot(incident, report, { status: 'open', extraBlocks });
}

/** The root of an incident no diagnosis has classified (an unmapped alert, a failover). */
export function renderPlainRoot(
  record: IncidentRecord,
  headline: string | undefined,
  state: RootState,
): SlackMessage {
  const icon = state.status === 'resolved' ? ':large_green_circle:' : ':red_circle:';
  const title = `${icon} *${escapeText(record.title)}*${state.status === 'resolved' ? ' — resolved' : ''}`;
  const blocks: KnownBlock[] = [
    section(headline === undefined ? title : `${title}\n${escapeText(headline)}`),
  ];
  if (state.status === 'resolved') {
    blocks.push(
      context(
        `:large_green_circle: Resolved${state.resolvedAt === undefined ? '' : ` at ${time(state.resolvedAt)}`}${state.reason === undefined ? '' : ` — ${clip(state.reason, 500)}`}`,
      ),
    );
  }
  blocks.push(...lifecycleBlocks(state));
  blocks.push(context(`Details in the thread · key \`${escapeText(record.key)}\``));
  return {
    text: escapeClipped(
      `${record.title}${headline === undefined ? '' : `: ${headline}`}`,
      LIMITS.messageText,
    ),
    blocks,
  };
}

/** The first diagnosis of an incident an alert or a VIP event opened. */
export function renderFirstDiagnosis(incident: Incident, report: StatusReport): SlackMessage {
  return plain(`:mag: Diagnosis at ${report.startedAt}: ${escapeText(incident.summary)}`);
}

export function renderReopened(record: IncidentRecord, resolvedAgoMs: number): SlackMessage {
  const ago = Math.max(0, Math.round(resolvedAgoMs / 1000));
  return plain(
    `:repeat: Reopened: the symptom is back ${ago} s after this incident resolved (${record.reopenedCount} time${record.reopenedCount === 1 ? '' : 's'} so far).`,
  );
}

export function renderAcknowledged(user: string, at: number): SlackMessage {
  return plain(`:eyes: ${mention(user)} acknowledged this incident at ${time(at)}.`);
}

export function renderAlertRoot(title: string, node: string | null, alertname: string): SlackMessage {
  return plain(
    `:bell: *${escapeText(title)}*${node === null ? '' : ` (${escapeText(node)})`} — opened by the alert ${inlineCode(alertname, 200)}`,
  );
}

export function renderAlertResolved(alertname: string, node: string | null, at: number): SlackMessage {
  return plain(
    `:white_check_mark: ${escapeText(alertname)}${node === null ? '' : ` on ${escapeText(node)}`} resolved at ${time(at)}`,
  );
}

/** One line per alert: its state now, how many deliveries the bot received, first and last. */
export function renderAlertSummary(
  alerts: readonly IncidentAlert[],
  silenceFor?: { readonly incidentId: number },
): SlackMessage {
  const lines = alerts.map(
    (a) =>
      `${a.status === 'firing' ? ':fire:' : ':white_check_mark:'} ${inlineCode(a.alertname, 200)}${a.node === null ? '' : ` on ${escapeText(a.node)}`}: ${a.status} now · ${a.count} deliver${a.count === 1 ? 'y' : 'ies'} received · first ${time(a.firstSeen)} · last ${time(a.lastSeen)}`,
  );
  const shown = lines.slice(0, 40).join('\n');
  const more = lines.length > 40 ? `\n…and ${lines.length - 40} more` : '';
  const text = `Alerts (${lines.length})\n${shown}${more}`;
  const blocks = [section(text)];
  if (silenceFor !== undefined) blocks.push(silenceButtons(silenceFor.incidentId));
  return { text: clip(text, LIMITS.messageText), blocks };
}

export function renderVipNotice(notice: VipNotice): SlackMessage {
  switch (notice.kind) {
    case 'moved':
      return plain(
        `:arrows_counterclockwise: VIP moved from *${escapeText(notice.from)}* to *${escapeText(notice.to)}* at ${time(notice.at).slice(0, 8)} (${escapeText(notice.source)})`,
      );
    case 'split-brain':
      return plain(
        `:rotating_light: *SPLIT BRAIN*: ${notice.holders.map(escapeText).join(' and ')} all hold the VIP ${escapeText(notice.address)} (seen ${time(notice.at).slice(0, 8)}). Clients may reach either Pi. Restart keepalived on both, one after the other.`,
      );
    case 'no-holder':
      return plain(
        `:red_circle: *No node holds the VIP* ${escapeText(notice.address)} (seen ${time(notice.at).slice(0, 8)}${notice.lastHolder === undefined ? '' : `; last holder ${escapeText(notice.lastHolder)}`}).`,
      );
    case 'back':
      return plain(
        `:large_green_circle: VIP back on ${escapeText(notice.holder)} at ${time(notice.at).slice(0, 8)}.`,
      );
    case 'cause': {
      const offer =
        notice.actions.length === 0
          ? 'No action offered.'
          : `Offered below: ${notice.actions.map((a) => `\`${escapeText(a.actionId)}\` on ${a.nodes.map(escapeText).join(', ')}`).join('; ')}.`;
      const lines = [
        `:mag: *Why the VIP moved* (\`${notice.cause.kind}\`): ${escapeText(notice.cause.summary)}`,
        ...(notice.unsettled === undefined ? [] : [`_Diagnosed unsettled: ${escapeText(notice.unsettled)}_`]),
        ...notice.advice.map((a) => `• ${escapeText(a)}`),
        offer,
      ];
      return plain(lines.join('\n'));
    }
  }
}
