import type { KnownBlock } from '@slack/types';
import type { CheckResult } from '../../domain/check-result.js';
import type { Incident, Isolation, VipState } from '../../domain/classify.js';
import type { StatusReport } from '../../domain/report.js';
import { clip, escapeText, LIMITS, mentionUser, STATUS_EMOJI } from './mrkdwn.js';
import { sparkline } from './sparkline.js';

export interface SlackMessage {
  readonly text: string;
  readonly blocks: KnownBlock[];
}

const section = (text: string): KnownBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) },
});
const context = (texts: readonly string[]): KnownBlock => ({
  type: 'context',
  elements: texts
    .slice(0, LIMITS.contextElements)
    .map((t) => ({ type: 'mrkdwn' as const, text: clip(t, LIMITS.sectionText) })),
});
const header = (text: string): KnownBlock => ({
  type: 'header',
  text: { type: 'plain_text', text: clip(text, LIMITS.headerText), emoji: true },
});

/** The VIP holder comes first in every report (golden rule 3: VIP failure ≠ outage). */
export function vipText(address: string, state: VipState): string {
  switch (state.kind) {
    case 'single':
      return `:large_green_circle: VIP \`${address}\` is held by *${escapeText(state.holder)}*`;
    case 'none':
      return `:red_circle: VIP \`${address}\` is held by *no node*`;
    case 'split':
      return `:rotating_light: *SPLIT BRAIN*: VIP \`${address}\` is held by *${state.holders.map(escapeText).join('* and *')}*`;
    case 'unknown':
      return `:grey_question: VIP \`${address}\`: holder unknown (${escapeText(state.reason)})`;
  }
}

export function incidentLabel(incident: Incident): string {
  return `Incident ${incident.number} — ${incident.title}${incident.nodes.length > 0 ? ` (${incident.nodes.join(', ')})` : ''}`;
}

/** "running N checks…", updated as results arrive: problems so far are listed as they come. */
export function renderProgress(
  what: string,
  done: number,
  total: number,
  problems: readonly CheckResult[],
): SlackMessage {
  const text = clip(
    `:hourglass_flowing_sand: ${what}: running ${total} checks… ${done}/${total} done`,
    LIMITS.messageText,
  );
  const blocks: KnownBlock[] = [section(escapeText(text))];
  if (problems.length > 0) {
    const shown = problems
      .slice(0, 10)
      .map((p) => `${STATUS_EMOJI[p.status]} \`${p.id}\` ${escapeText(p.summary)}`);
    if (problems.length > 10) shown.push(`…and ${problems.length - 10} more`);
    blocks.push(section(shown.join('\n')));
  }
  return { text, blocks };
}

export interface SummaryOptions {
  /** Where each incident's thread is, by incident key (a channel mention is enough). */
  readonly threadHint?: (incident: Incident) => string | undefined;
  /** Recent Redis hit ratios, oldest first. */
  readonly hitRatios?: readonly (number | null)[];
  readonly requestedBy?: string;
}

const MAX_PROBLEMS = 15;

/** The channel message: short. Evidence and full output go to the incident thread. */
export function renderSummary(report: StatusReport, options: SummaryOptions = {}): SlackMessage {
  const what = report.kind === 'validate' ? 'validation' : report.kind === 'check' ? 'check' : 'status';
  const { blocks, textLines } =
    report.isolation === undefined
      ? incidentBlocks(report, what, options)
      : isolationBlocks(report.isolation, report.checks, what);
  blocks.push(context(summaryFacts(report, options)));
  return { text: clip(textLines.join('\n'), LIMITS.messageText), blocks: blocks.slice(0, LIMITS.blocks) };
}

/**
 * The bot reached nothing: the verdict leads, in place of the VIP line and incidents, which
 * would only describe the bot's own network (golden rule 1: cache nodes are symptoms).
 */
function isolationBlocks(
  isolation: Isolation,
  checks: readonly CheckResult[],
  what: string,
): { blocks: KnownBlock[]; textLines: string[] } {
  const title = `OKOME ${what}: cannot reach the cache layer`;
  const sentence = capitalise(isolation.summary);
  const verdict = `:satellite_antenna: *${escapeText(sentence)}.*\n${escapeText(capitalise(isolation.detail))}.\nNo incident opened, no Pi declared dead, no action offered.`;
  const byId = new Map(checks.map((c) => [c.id, c]));
  const evidence = isolation.evidence.flatMap((id) => {
    const c = byId.get(id);
    return c === undefined ? [] : [`${STATUS_EMOJI[c.status]} \`${c.id}\` ${escapeText(c.summary)}`];
  });
  const advice = isolation.advice.map((a) => `• ${escapeText(a)}`);
  return {
    blocks: [header(title), section(verdict), section([...evidence, ...advice].join('\n'))],
    textLines: [title, `${escapeText(sentence)}.`],
  };
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function incidentBlocks(
  report: StatusReport,
  what: string,
  options: SummaryOptions,
): { blocks: KnownBlock[]; textLines: string[] } {
  const title =
    report.incidents.length > 0
      ? `OKOME ${what}: ${report.incidents.length} incident${report.incidents.length > 1 ? 's' : ''}`
      : report.healthy
        ? `OKOME ${what}: healthy`
        : `OKOME ${what}: no incident, some checks did not pass`;
  const blocks: KnownBlock[] = [header(title), section(vipText(report.vip.address, report.vip.state))];
  const textLines = [title, vipText(report.vip.address, report.vip.state)];
  for (const incident of report.incidents) {
    const lines = [`*${escapeText(incidentLabel(incident))}*`, escapeText(incident.summary)];
    if (incident.actions.length > 0) {
      lines.push(
        `Proposed: ${incident.actions.map((a) => `\`${a.actionId}\` on ${a.nodes.join(', ')}`).join(', ')} (approve in the thread)`,
      );
    } else if (incident.held !== undefined) {
      lines.push(`:raised_hand: ${escapeText(incident.held.reason)}`);
    } else if (incident.advice.length > 0) {
      lines.push(escapeText(incident.advice[0] ?? ''));
    } else {
      lines.push('No cache-node action (runbook).');
    }
    const hint = options.threadHint?.(incident);
    if (hint !== undefined) lines.push(hint);
    blocks.push(section(lines.join('\n')));
    textLines.push(escapeText(incidentLabel(incident)));
  }
  const problems = report.checks.filter((c) => c.status !== 'ok');
  if (problems.length > 0) {
    const shown = problems
      .slice(0, MAX_PROBLEMS)
      .map((p) => `${STATUS_EMOJI[p.status]} \`${p.id}\` ${escapeText(p.summary)}`);
    if (problems.length > MAX_PROBLEMS)
      shown.push(`…and ${problems.length - MAX_PROBLEMS} more (see the thread)`);
    blocks.push(section(shown.join('\n')));
  }
  return { blocks, textLines };
}

function summaryFacts(report: StatusReport, options: SummaryOptions): string[] {
  const n = report.counts;
  const facts = [
    `${report.checks.length} checks in ${report.durationMs} ms`,
    `${STATUS_EMOJI.ok} ${n.ok}  ${STATUS_EMOJI.warn} ${n.warn}  ${STATUS_EMOJI.fail} ${n.fail + n.unreachable + n.timeout}  ${STATUS_EMOJI.unknown} ${n.unknown}`,
  ];
  if (options.hitRatios !== undefined && options.hitRatios.length > 0) {
    const last = options.hitRatios.at(-1);
    facts.push(
      `Redis hit ratio ${sparkline(options.hitRatios)} ${last == null ? 'n/a' : `${Math.round(last * 100)} %`}`,
    );
  }
  if (options.requestedBy !== undefined) facts.push(`asked by ${mentionUser(options.requestedBy)}`);
  return facts;
}

/** Every check, for a thread: as many messages as the block limit needs. */
export function renderCheckList(checks: readonly CheckResult[]): SlackMessage[] {
  const lines = checks.map((c) => `${STATUS_EMOJI[c.status]} \`${c.id}\` ${escapeText(c.summary)}`);
  const sections: string[] = [];
  let current = '';
  for (const line of lines) {
    const l = clip(line, 600);
    if (current.length + l.length + 1 > LIMITS.sectionText - 100) {
      sections.push(current);
      current = '';
    }
    current = current === '' ? l : `${current}\n${l}`;
  }
  if (current !== '') sections.push(current);
  const messages: SlackMessage[] = [];
  for (let i = 0; i < sections.length; i += LIMITS.blocks - 1) {
    const part = sections.slice(i, i + LIMITS.blocks - 1);
    messages.push({ text: `All checks (${checks.length})`, blocks: part.map(section) });
  }
  return messages;
}
