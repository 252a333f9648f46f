import { duration, type IncidentReport } from '../../domain/incident-report.js';
import type { MessagePayload } from '../../outbox/payload.js';
import { chunk, clip, codeBlock, escapeText, LIMITS } from './mrkdwn.js';

/** The line a report file is shared with: which incident, and its two figures. */
export function renderReportComment(report: IncidentReport): string {
  const ack =
    report.timeToAcknowledgeMs === null ? 'never acknowledged' : duration(report.timeToAcknowledgeMs);
  const resolve = report.timeToResolveMs === null ? 'not resolved' : duration(report.timeToResolveMs);
  const fixed = report.checks.filter(
    (c) => c.after !== undefined && (c.after.status === 'ok' || c.after.status === 'warn'),
  );
  const checks =
    report.checks.length === 0
      ? ''
      : `; ${fixed.length} of ${report.checks.length} failing check(s) passed again`;
  return clip(
    `:page_facing_up: Post-incident report, ${escapeText(report.title)}: time to acknowledge ${ack}, time to resolve ${resolve}${checks}.`,
    LIMITS.messageText,
  );
}

/** The report as a message (uploads off or refused): the Markdown in code blocks, as many as fit. */
export function renderReportMessage(report: IncidentReport): MessagePayload {
  const head = renderReportComment(report);
  const parts = chunk(report.markdown, LIMITS.sectionText - 100);
  const room = LIMITS.blocks - 2;
  const shown = parts.slice(0, room);
  const left = parts.slice(room).reduce((n, p) => n + p.length, 0);
  const blocks = [
    { type: 'section' as const, text: { type: 'mrkdwn' as const, text: head } },
    ...shown.map((p) => ({
      type: 'section' as const,
      text: { type: 'mrkdwn' as const, text: codeBlock(p) },
    })),
    ...(left === 0
      ? []
      : [
          {
            type: 'context' as const,
            elements: [
              {
                type: 'mrkdwn' as const,
                text: `…and ${left} more characters: \`okome report\` on the bot's host prints it all.`,
              },
            ],
          },
        ]),
  ];
  return { text: head, blocks };
}
