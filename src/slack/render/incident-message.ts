import type { KnownBlock } from '@slack/types';
import type { CheckResult } from '../../domain/check-result.js';
import type { Incident } from '../../domain/classify.js';
import type { StatusReport } from '../../domain/report.js';
import { goldenRules, type IncidentNumber, runbook } from '../../domain/runbook.js';
import { clip, codeBlock, escapeClipped, escapeText, LIMITS, STATUS_EMOJI } from './mrkdwn.js';
import { incidentLabel, type SlackMessage, vipText } from './status-message.js';

const section = (text: string): KnownBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) },
});

export type IncidentRootStatus =
  | { readonly status: 'open'; readonly extraBlocks?: readonly KnownBlock[] }
  | {
      readonly status: 'resolved';
      /** Epoch ms. */
      readonly resolvedAt: number;
      /** One line: why it closed ("A status found its checks healthy again."). */
      readonly reason: string;
      readonly extraBlocks?: readonly KnownBlock[];
    };

/** "03:14:07 UTC". */
const clockTime = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/**
 * The incident's channel message: what, where, the VIP holder; details live in its thread.
 * Resolved, it keeps what it said (title struck, summary, evidence) and says when and why it
 * closed: the channel stays a readable history, not a list of "Resolved" lines.
 */
export function renderIncidentRoot(
  incident: Incident,
  report: StatusReport,
  options: IncidentRootStatus,
): SlackMessage {
  const resolved = options.status === 'resolved';
  const icon = resolved
    ? ':large_green_circle:'
    : incident.number === '3' && incident.title.includes('split')
      ? ':rotating_light:'
      : ':red_circle:';
  const label = incidentLabel(incident);
  const lines = [
    resolved ? `${icon} *Resolved:* ~${escapeText(label)}~` : `${icon} *${escapeText(label)}*`,
    escapeText(incident.summary),
  ];
  const blocks: KnownBlock[] = [
    section(vipText(report.vip.address, report.vip.state)),
    section(lines.join('\n')),
  ];
  if (incident.held !== undefined) blocks.push(section(`:raised_hand: ${escapeText(incident.held.reason)}`));
  for (const advice of incident.advice) blocks.push(section(`• ${escapeText(advice)}`));
  if (!resolved && incident.actions.length === 0 && incident.held === undefined) {
    blocks.push(section('No cache-node action proposed (runbook).'));
  }
  blocks.push(...(options.extraBlocks ?? []));
  const footer = `Evidence and follow-ups in the thread · key \`${escapeText(incident.key)}\``;
  const elements = resolved
    ? [
        {
          type: 'mrkdwn' as const,
          text: clip(
            `:large_green_circle: Resolved at ${clockTime(options.resolvedAt)} — ${options.reason}`,
            2000,
          ),
        },
        { type: 'mrkdwn' as const, text: footer },
      ]
    : [{ type: 'mrkdwn' as const, text: footer }];
  // The footer last, so Slack's block limit cuts advice rather than it.
  const body = blocks.slice(0, LIMITS.blocks - 1);
  body.push({ type: 'context', elements });
  return {
    text: escapeClipped(`${resolved ? 'Resolved: ' : ''}${label}: ${incident.summary}`, LIMITS.messageText),
    blocks: body,
  };
}

/**
 * The evidence for the thread: each check that shows the incident, with its command output as
 * a code block; split over several messages when Slack's limits need it.
 */
export function renderEvidence(incident: Incident, checks: readonly CheckResult[]): SlackMessage[] {
  const byId = new Map(checks.map((c) => [c.id, c]));
  const blocks: KnownBlock[] = [section(`*Evidence for ${escapeText(incidentLabel(incident))}*`)];
  for (const id of incident.evidence) {
    const c = byId.get(id);
    if (c === undefined) continue;
    blocks.push(
      section(
        `${STATUS_EMOJI[c.status]} *${escapeText(c.title)}* \`${escapeText(c.id)}\` (${c.durationMs} ms)\n${escapeText(c.summary)}`,
      ),
    );
    if (c.evidence !== undefined && c.evidence.trim() !== '') blocks.push(section(codeBlock(c.evidence)));
  }
  const follow = incident.followUps.map((f) => `• ${escapeText(f)}`);
  if (follow.length > 0) blocks.push(section(`*Follow-up (runbook)*\n${follow.join('\n')}`));
  const messages: SlackMessage[] = [];
  for (let i = 0; i < blocks.length; i += LIMITS.blocks) {
    messages.push({
      text: escapeClipped(`Evidence: ${incidentLabel(incident)}`, LIMITS.messageText),
      blocks: blocks.slice(i, i + LIMITS.blocks),
    });
  }
  return messages;
}

/** A later status saw the same incident again. */
export function renderStillOpen(incident: Incident, report: StatusReport): SlackMessage {
  const text = escapeClipped(`Still present at ${report.startedAt}: ${incident.summary}`, LIMITS.messageText);
  return { text, blocks: [section(`:repeat: ${text}`)] };
}

export function renderResolved(
  incident: { readonly number: string; readonly title: string; readonly key: string },
  why: string,
): SlackMessage {
  // `why` is the bot's own sentence (resolveReason): its mention is built from a validated ID.
  const text = clip(
    `Resolved: incident ${escapeText(incident.number)} — ${escapeClipped(incident.title, 500)} (${escapeClipped(incident.key, 500)}). ${why}`,
    LIMITS.messageText,
  );
  return { text, blocks: [section(`:large_green_circle: ${text}`)] };
}

/** `/okome incident <n>`: the runbook's card. */
export function renderRunbookCard(number: IncidentNumber): SlackMessage {
  const card = runbook[number];
  const list = (items: readonly string[]) => items.map((i) => `• ${i}`).join('\n');
  const blocks: KnownBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: clip(`Incident ${number} — ${card.title}`, LIMITS.headerText) },
    },
    section(`*Symptoms*\n${list(card.symptoms)}`),
    section(`*Impact*\n${card.impact}`),
    section(`*Immediate actions*\n${list(card.immediate)}`),
    section(
      `*Bot actions*\n${card.actions.length > 0 ? card.actions.map((a) => `\`${a}\` (needs approval)`).join(', ') : 'None: the runbook says not to touch cache nodes for this incident.'}`,
    ),
    section(`*Verification*\n${list(card.verification)}`),
    section(`*Follow-up*\n${list(card.followUps)}`),
  ];
  return { text: `Incident ${number} — ${card.title}`, blocks };
}

export const USAGE_LINES = [
  '`/okome status` — run every runbook check, name the incident, offer the fix',
  '`/okome validate` — the validation script: SSH, services, memory, disk, network, cache headers, VIP',
  '`/okome check &lt;check-id | node | incident-number&gt;` — run one slice of the checks',
  '`/okome incident &lt;1-7 | 5b&gt;` — the runbook card for an incident',
  '`/okome resolve [incident]` — close an incident by hand (key like `1:pi-a`, a number, or the newest)',
  "`/okome timeline [incident]` — the incident's timeline as markdown, for the postmortem",
  '`/okome report [incident]` — the post-incident report (timeline, commands, before/after checks) as a file in its thread',
  '`/okome drill failover|redis` — rehearse incident 4 or 2 on purpose (approved; refused while an incident is open): measured against the runbook, then restored',
  '`/okome coverage` — each runbook incident: what detects and fixes it, when it was last seen, fixed, verified and drilled',
  '`/okome help` — this text',
];

export function renderHelp(targets: readonly string[]): SlackMessage {
  const blocks: KnownBlock[] = [
    section(`*okome* — the OKOME cache runbook, automated\n${USAGE_LINES.join('\n')}`),
    section(`*Check targets*: ${targets.map((t) => `\`${escapeText(t)}\``).join(' ')}`),
    section(`*Golden rules*\n${goldenRules.map((r, i) => `${i + 1}. ${r}`).join('\n')}`),
  ];
  return { text: 'okome help', blocks };
}

export function renderUsage(problem: string): SlackMessage {
  const text = clip(`${escapeClipped(problem, 1000)}\n${USAGE_LINES.join('\n')}`, LIMITS.messageText);
  return { text, blocks: [section(escapeText(problem)), section(USAGE_LINES.join('\n'))] };
}
