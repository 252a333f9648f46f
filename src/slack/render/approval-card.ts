import type { KnownBlock } from '@slack/types';
import { titleFromActionId } from '../../config/schema.js';
import { APPROVE_PREFIX, REJECT_PREFIX } from '../../domain/action-ids.js';
import { type Approval, stateReason } from '../../domain/approval.js';
import type { CardInfo } from '../../remediation/approval-presenter.js';
import type { ExecutionReport } from '../../remediation/execute.js';
import { shortActionLabel } from '../../remediation/plan.js';
import {
  clip,
  codeBlock,
  escapeClipped,
  escapeText,
  inlineCode,
  LIMITS,
  mentionUser as mention,
} from './mrkdwn.js';
import type { SlackMessage } from './status-message.js';

/**
 * The approval card: what will run where, who asked, who approved, and the buttons. A button
 * carries only the approval's opaque id; the action id names the verb and the same id.
 */

function confirmSuffix(dryRun: boolean): string {
  return `${dryRun ? ' (dry-run: shown, not run)' : ''}.`;
}

/** "Runs " and the longest suffix: what the confirm text holds besides the command. */
const CONFIRM_FRAME = `Runs ${confirmSuffix(true)}`.length;

const STATE_ICON: Record<Approval['state'], string> = {
  pending: ':large_yellow_circle:',
  approved: ':large_blue_circle:',
  running: ':gear:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  interrupted: ':warning:',
  rejected: ':no_entry_sign:',
  expired: ':hourglass:',
  cancelled: ':heavy_minus_sign:',
};

const section = (text: string): KnownBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: clip(text, LIMITS.sectionText) },
});

export function renderApprovalCard(
  approval: Approval,
  info: CardInfo,
  options: { buttons: boolean },
): SlackMessage {
  const need = approval.requiredApprovals;
  const head = `${STATE_ICON[approval.state]} *${escapeText(capitalise(info.label))}* — ${approval.state}${info.dryRun ? ' (dry-run: nothing will run)' : ''}`;
  const lines = [
    head,
    `Risk ${info.risk} · needs ${need} approval${need > 1 ? 's (two different people, not the requester)' : ''} · asked by ${mention(approval.requester)}`,
  ];
  if (approval.approvers.length > 0)
    lines.push(`Approved by ${approval.approvers.map((a) => mention(a.user)).join(', ')}`);
  if (approval.state !== 'pending') lines.push(escapeText(stateReason(approval, mention)));
  const blocks: KnownBlock[] = [section(lines.join('\n')), section(codeBlock(info.details.join('\n'), 1500))];
  if (info.notes.length > 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: clip(escapeText(info.notes.join(' · ')), 2000) }],
    });
  if (options.buttons && approval.state === 'pending') {
    const short = info.shortLabel ?? shortActionLabel(titleFromActionId(approval.actionId), approval.targets);
    const command = approval.commands.map((c) => `${c.command} on ${c.node}`).join('; ');
    blocks.push({
      type: 'actions',
      block_id: clip(`approval:${approval.id}`, 255),
      elements: [
        {
          type: 'button',
          action_id: `${APPROVE_PREFIX}${approval.id}`,
          value: approval.id,
          style: 'primary',
          text: { type: 'plain_text', text: clip(`Approve: ${short}`, LIMITS.buttonText) },
          confirm: {
            title: { type: 'plain_text', text: clip(`${capitalise(short)}?`, LIMITS.confirmTitle) },
            text: {
              type: 'mrkdwn',
              // The command is clipped inside its code span, which stays closed (a clip of the
              // whole sentence cut the closing backtick off).
              text: `Runs ${inlineCode(command, LIMITS.confirmText - CONFIRM_FRAME)}${confirmSuffix(info.dryRun)}`,
            },
            confirm: { type: 'plain_text', text: 'Approve' },
            deny: { type: 'plain_text', text: 'Cancel' },
          },
        },
        {
          type: 'button',
          action_id: `${REJECT_PREFIX}${approval.id}`,
          value: approval.id,
          style: 'danger',
          text: { type: 'plain_text', text: 'Reject' },
        },
      ],
    });
  }
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: `\`${approval.id}\` · expires ${new Date(approval.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}`,
      },
    ],
  });
  return {
    text: escapeClipped(`${capitalise(info.label)}: ${approval.state}`, LIMITS.messageText),
    blocks,
  };
}

/** What ran, in the incident thread: each step with its exit code and output, then the verification. */
export function renderExecution(report: ExecutionReport, who: string): SlackMessage[] {
  // The headline, not the summary: the summary carries its own icon and duration.
  const took = report.dryRun ? '' : `${(Math.round(report.durationMs / 100) / 10).toFixed(1)} s, `;
  const blocks: KnownBlock[] = [
    section(
      `${report.ok ? ':white_check_mark:' : ':x:'} *${escapeText(report.headline)}* (${took}approved by ${who})`,
    ),
  ];
  if (report.dryRun) {
    blocks.push(
      section(
        `*Dry-run*, nothing ran. Would run:\n${codeBlock(report.wouldRun.map((w) => `${w.node} (${w.address}): ${w.command}`).join('\n'))}`,
      ),
    );
  }
  for (const step of report.steps) {
    const exit =
      step.exitCode === null
        ? `no exit status${step.errorCode ? ` (${step.errorCode})` : ''}`
        : `exit ${step.exitCode}`;
    blocks.push(
      section(
        `${step.ok ? ':white_check_mark:' : ':x:'} \`${escapeText(step.command)}\` on *${escapeText(step.node)}* → ${exit} in ${step.durationMs} ms`,
      ),
    );
    const out = [
      step.stdout.trimEnd(),
      step.stderr.trimEnd() === '' ? '' : `[stderr]\n${step.stderr.trimEnd()}`,
    ]
      .filter((x) => x !== '')
      .join('\n');
    if (out !== '') blocks.push(section(codeBlock(out, 2000)));
  }
  if (report.notRun.length > 0) {
    blocks.push(
      section(
        `Not run after the failure:\n${codeBlock(report.notRun.map((w) => `${w.node}: ${w.command}`).join('\n'))}`,
      ),
    );
  }
  for (const gate of report.gates) {
    blocks.push(
      section(
        `${gate.ok ? ':white_check_mark:' : ':x:'} Back on ${gate.nodes.join(', ')} before going on: ${escapeText(gate.details)}`,
      ),
    );
  }
  if (report.verification !== undefined) {
    const v = report.verification;
    blocks.push(
      section(
        `${v.ok ? ':white_check_mark:' : ':x:'} *Verification* (${v.checks.join(', ')} on ${v.nodes.join(', ')}; ${v.attempts} attempt(s), ${(v.durationMs / 1000).toFixed(1)} s)\n${codeBlock(v.details, 2000)}`,
      ),
    );
  }
  const messages: SlackMessage[] = [];
  for (let i = 0; i < blocks.length; i += LIMITS.blocks) {
    messages.push({
      text: escapeClipped(report.summary, LIMITS.messageText),
      blocks: blocks.slice(i, i + LIMITS.blocks),
    });
  }
  return messages;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
