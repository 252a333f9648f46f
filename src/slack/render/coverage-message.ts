import type { KnownBlock } from '@slack/types';
import type { Coverage, IncidentCoverage } from '../../domain/coverage.js';
import { clip, escapeClipped, escapeText, LIMITS } from './mrkdwn.js';
import type { SlackMessage } from './status-message.js';

/**
 * `/okome coverage`, ephemeral: one section per runbook incident with what detects it, what
 * fixes it and when it was last seen, fixed, verified and drilled ("never" where nothing was).
 * Every stored string (incident keys, drill outcomes) passes the escape boundary.
 */

const when = (ms: number | null) =>
  ms === null ? '_never_' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

const codes = (ids: readonly string[]) =>
  ids.length === 0 ? 'none' : ids.map((id) => `\`${escapeText(id)}\``).join(', ');

const field = (label: string, value: string) => ({
  type: 'mrkdwn' as const,
  text: clip(`*${label}*\n${value}`, 2000),
});

function incidentBlock(c: IncidentCoverage): KnownBlock {
  const seen =
    c.lastSeen === null
      ? '_never_'
      : `${when(c.lastSeen.at)} (\`${escapeClipped(c.lastSeen.key, 200)}\`; ${c.seen} incident${c.seen === 1 ? '' : 's'})`;
  const drill =
    c.lastDrill !== null
      ? `${when(c.lastDrill.finishedAt)}: ${escapeText(c.lastDrill.kind)}, ${escapeClipped(c.lastDrill.outcome, 300)}`
      : c.drillKinds.length > 0
        ? `_never_ (drill: ${codes(c.drillKinds)})`
        : '_never_ (no drill rehearses it)';
  return {
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: clip(
        `*Incident ${escapeText(c.number)} — ${escapeText(c.title)}*\nChecks: ${codes(c.checks)}\nAlert rules: ${codes(c.alertRules)} · Actions: ${c.actions.length === 0 ? 'none on the cache nodes (runbook)' : codes(c.actions)}`,
        LIMITS.sectionText,
      ),
    },
    fields: [
      field('Last seen', seen),
      field('Last fixed', when(c.lastFixedAt)),
      field('Last verified', when(c.lastVerifiedAt)),
      field('Last drill', drill),
    ],
  };
}

export function renderCoverage(coverage: Coverage): SlackMessage {
  const neverSeen = coverage.incidents.filter((c) => c.lastSeen === null).map((c) => c.number);
  const neverDrilled = coverage.incidents.filter((c) => c.lastDrill === null).map((c) => c.number);
  const summary = `Never seen: ${neverSeen.length === 0 ? 'none' : neverSeen.join(', ')} · never rehearsed by a drill: ${neverDrilled.length === 0 ? 'none' : neverDrilled.join(', ')}`;
  const f = coverage.failovers;
  const failovers = `VIP failovers: ${f.count}${
    f.last === null
      ? ''
      : `, last ${when(f.last.at)} (cause: ${f.last.cause === null ? 'not explained yet' : escapeText(f.last.cause)})`
  }. A failover counts for the incident its cause belongs to, not as incident 4.`;
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: 'Runbook coverage' } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: clip(summary, 2000) }] },
  ];
  for (const c of coverage.incidents) blocks.push({ type: 'divider' }, incidentBlock(c));
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(failovers, 2000) }] });
  return {
    text: clip(`Runbook coverage. ${summary}`, LIMITS.messageText),
    blocks: blocks.slice(0, LIMITS.blocks),
  };
}
