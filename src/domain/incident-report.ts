import { z } from 'zod';
import type { ApprovalState } from './approval.js';
import type { CheckStatus } from './check-result.js';

/**
 * The post-incident report, built from what the store kept: the incident, its timeline, its
 * alerts and its approvals. Pure: the caller reads the store and decides where the Markdown
 * goes (a file in the thread, a text message, a file on disk). Outside text (alert names,
 * command output, check summaries) is written so Markdown cannot be broken by it: table cells
 * escaped, output fenced by a fence longer than any backtick run inside it.
 */

/** What the report needs of an incident (the store's row fits). */
export interface ReportIncident {
  readonly key: string;
  readonly number: string;
  readonly title: string;
  readonly status: 'open' | 'resolved';
  readonly requester: string;
  readonly openedAt: number;
  readonly resolvedAt: number | null;
  readonly resolvedReason: string | null;
  readonly acknowledgedBy: string | null;
  readonly acknowledgedAt: number | null;
  readonly reopenedCount: number;
}

export interface ReportTimelineEntry {
  readonly at: number;
  readonly kind: string;
  readonly text: string;
  readonly data: unknown;
}

export interface ReportAlert {
  readonly alertname: string;
  readonly node: string | null;
  readonly status: 'firing' | 'resolved';
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly count: number;
}

export interface ReportApproval {
  readonly id: string;
  readonly actionId: string;
  readonly targets: readonly string[];
  readonly commands: readonly { readonly node: string; readonly command: string }[];
  readonly requiredApprovals: number;
  readonly approvers: readonly { readonly user: string; readonly at: number }[];
  readonly requester: string;
  readonly state: ApprovalState;
  readonly createdAt: number;
  readonly rejectedBy: { readonly user: string; readonly at: number } | null;
  readonly outcome: string | null;
}

export interface ReportInput {
  readonly incident: ReportIncident;
  readonly timeline: readonly ReportTimelineEntry[];
  readonly alerts: readonly ReportAlert[];
  readonly approvals: readonly ReportApproval[];
  readonly generatedAt: number;
}

/** A check as the timeline keeps it (diagnosis evidence, verification, the healing status). */
export interface CheckBrief {
  readonly id: string;
  readonly status: CheckStatus;
  readonly summary: string;
}

export interface BeforeAfter {
  readonly id: string;
  readonly before: CheckBrief;
  /** undefined: the check was never judged again after it failed. */
  readonly after:
    | (CheckBrief & { readonly at: number; readonly source: 'verification' | 'resolution' })
    | undefined;
}

export interface IncidentReport {
  readonly title: string;
  /** A file name made of the key's safe characters, e.g. `okome-incident-2-pi-b-20261202T0312Z.md`. */
  readonly filename: string;
  readonly markdown: string;
  readonly timeToAcknowledgeMs: number | null;
  readonly timeToResolveMs: number | null;
  readonly checks: readonly BeforeAfter[];
}

// The structured parts of timeline entries: each writer adds its `data`; older rows lack it.
const checkStatus = z.enum(['ok', 'warn', 'fail', 'unreachable', 'timeout', 'unknown']);
const checkBrief = z.object({ id: z.string(), status: checkStatus, summary: z.string() });
const withChecks = z.object({ checks: z.array(checkBrief) });
const commandData = z.object({
  node: z.string(),
  command: z.string(),
  exitCode: z.number().nullable(),
  durationMs: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean().optional(),
});
const outcomeData = z.object({
  verification: z.object({ ok: z.boolean(), attempts: z.number(), checks: z.array(checkBrief) }),
});

/** A status that says the check saw a healthy thing; anything else counts as failing. */
const passes = (s: CheckStatus) => s === 'ok' || s === 'warn';

export function buildIncidentReport(input: ReportInput): IncidentReport {
  const { incident, timeline, alerts, approvals } = input;
  const ordered = [...timeline].map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i);
  const entries = ordered.map(({ e }) => e);
  const timeToAcknowledgeMs =
    incident.acknowledgedAt === null ? null : incident.acknowledgedAt - incident.openedAt;
  const timeToResolveMs = incident.resolvedAt === null ? null : incident.resolvedAt - incident.openedAt;
  const checks = beforeAfter(entries);
  const title = `Incident ${incident.number}: ${incident.title}`;

  const lines: string[] = [
    `# Post-incident report: ${inline(title)}`,
    '',
    `| | |`,
    `|---|---|`,
    `| Key | ${cell(incident.key)} |`,
    `| Opened | ${iso(incident.openedAt)} by ${cell(who(incident.requester))} |`,
    `| Acknowledged | ${incident.acknowledgedAt === null || incident.acknowledgedBy === null ? 'never' : `${iso(incident.acknowledgedAt)} by ${cell(incident.acknowledgedBy)}`} |`,
    `| Resolved | ${incident.resolvedAt === null ? `not yet (${incident.status})` : `${iso(incident.resolvedAt)}${incident.resolvedReason === null ? '' : `: ${cell(incident.resolvedReason)}`}`} |`,
    `| Time to acknowledge | ${timeToAcknowledgeMs === null ? 'never acknowledged' : duration(timeToAcknowledgeMs)} |`,
    `| Time to resolve | ${timeToResolveMs === null ? 'not resolved' : duration(timeToResolveMs)} |`,
    ...(incident.reopenedCount > 0 ? [`| Reopened | ${incident.reopenedCount} time(s) |`] : []),
    '',
  ];

  lines.push('## Checks that diagnosed it', '');
  if (checks.length === 0) {
    lines.push(
      'No diagnosis named failing checks (the incident came from an alert or a VIP event alone).',
      '',
    );
  } else {
    lines.push('| Check | Before (first diagnosis) | After | Judged at |', '|---|---|---|---|');
    for (const c of checks) {
      const after =
        c.after === undefined ? 'not judged again' : `${c.after.status}: ${cell(c.after.summary)}`;
      const at = c.after === undefined ? '' : `${iso(c.after.at)} (${c.after.source})`;
      lines.push(`| ${cell(c.id)} | ${c.before.status}: ${cell(c.before.summary)} | ${after} | ${at} |`);
    }
    lines.push('');
  }

  if (alerts.length > 0) {
    lines.push(
      '## Alerts',
      '',
      '| Alert | Node | Status | First seen | Last seen | Deliveries |',
      '|---|---|---|---|---|---|',
    );
    for (const a of [...alerts].sort((x, y) => x.firstSeen - y.firstSeen)) {
      lines.push(
        `| ${cell(a.alertname)} | ${cell(a.node ?? '')} | ${a.status} | ${iso(a.firstSeen)} | ${iso(a.lastSeen)} | ${a.count} |`,
      );
    }
    lines.push('');
  }

  if (approvals.length > 0) {
    lines.push('## Approvals', '');
    for (const a of [...approvals].sort((x, y) => x.createdAt - y.createdAt)) {
      lines.push(
        `- ${inline(a.actionId)} on ${inline(a.targets.join(', '))}: ${a.state}, offered ${iso(a.createdAt)} (asked by ${inline(who(a.requester))}, ${a.requiredApprovals} approval(s) needed)`,
      );
      for (const p of a.approvers) lines.push(`  - approved by ${inline(p.user)} at ${iso(p.at)}`);
      if (a.rejectedBy !== null)
        lines.push(`  - rejected by ${inline(a.rejectedBy.user)} at ${iso(a.rejectedBy.at)}`);
      for (const c of a.commands) lines.push(`  - command on ${inline(c.node)}: ${code(c.command)}`);
      if (a.outcome !== null) lines.push(`  - outcome: ${inline(a.outcome)}`);
    }
    lines.push('');
  }

  lines.push('## Timeline (UTC)', '');
  const events = [
    ...entries.map((e) => ({ at: e.at, render: () => renderEntry(e) })),
    // Approval clicks are kept on the approval, not in the timeline: merged here in time order.
    ...approvals.flatMap((a) => [
      ...a.approvers.map((p) => ({
        at: p.at,
        render: () => [`- ${iso(p.at)} **approval** ${inline(a.actionId)} approved by ${inline(p.user)}`],
      })),
      ...(a.rejectedBy === null
        ? []
        : [
            {
              at: a.rejectedBy.at,
              render: () => [
                `- ${iso(a.rejectedBy?.at ?? a.createdAt)} **approval** ${inline(a.actionId)} rejected by ${inline(a.rejectedBy?.user ?? '')}`,
              ],
            },
          ]),
    ]),
  ]
    .map((x, i) => ({ ...x, i }))
    .sort((a, b) => a.at - b.at || a.i - b.i);
  if (events.length === 0) lines.push('Nothing was recorded.');
  for (const event of events) lines.push(...event.render());
  lines.push('', `_Generated ${iso(input.generatedAt)} by okome-bot._`, '');

  return {
    title,
    filename: `okome-incident-${incident.key.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}-${compactIso(incident.openedAt)}.md`,
    markdown: lines.join('\n'),
    timeToAcknowledgeMs,
    timeToResolveMs,
    checks,
  };
}

/**
 * Each check a diagnosis named as failing, with its first failing status, against the latest
 * judgement of the same check after it: a verification run or the status that resolved it.
 */
function beforeAfter(entries: readonly ReportTimelineEntry[]): BeforeAfter[] {
  const before = new Map<string, { brief: CheckBrief; at: number }>();
  for (const e of entries) {
    if (e.kind !== 'diagnosis') continue;
    const parsed = withChecks.safeParse(e.data);
    if (!parsed.success) continue;
    for (const c of parsed.data.checks) {
      if (!passes(c.status) && !before.has(c.id)) before.set(c.id, { brief: c, at: e.at });
    }
  }
  return [...before].map(([id, first]) => {
    let after: BeforeAfter['after'];
    for (const e of entries) {
      if (e.at < first.at) continue;
      const judged =
        e.kind === 'outcome'
          ? {
              checks: outcomeData.safeParse(e.data).data?.verification.checks,
              source: 'verification' as const,
            }
          : e.kind === 'resolved'
            ? { checks: withChecks.safeParse(e.data).data?.checks, source: 'resolution' as const }
            : undefined;
      const found = judged?.checks?.find((c) => c.id === id);
      if (judged !== undefined && found !== undefined) after = { ...found, at: e.at, source: judged.source };
    }
    return { id, before: first.brief, after };
  });
}

function renderEntry(e: ReportTimelineEntry): string[] {
  const head = `- ${iso(e.at)} **${e.kind}** ${inline(e.text)}`;
  if (e.kind === 'command') {
    const step = commandData.safeParse(e.data);
    if (!step.success) return [head];
    const s = step.data;
    const out = [
      head,
      `  - ${code(s.command)} on ${inline(s.node)}: ${s.exitCode === null ? 'no exit status' : `exit ${s.exitCode}`} in ${s.durationMs} ms${s.truncated === true ? ' (output cut)' : ''}`,
    ];
    if (s.stdout.trim() !== '') out.push('', ...fenced(s.stdout, '  '), '');
    if (s.stderr.trim() !== '') out.push('  stderr:', '', ...fenced(s.stderr, '  '), '');
    return out;
  }
  if (e.kind === 'outcome') {
    const outcome = outcomeData.safeParse(e.data);
    if (!outcome.success) return [head];
    const v = outcome.data.verification;
    return [
      head,
      `  - verification ${v.ok ? 'passed' : 'failed'} after ${v.attempts} attempt(s):`,
      ...v.checks.map((c) => `    - ${inline(c.id)}: ${c.status}, ${inline(c.summary)}`),
    ];
  }
  if (e.kind === 'diagnosis') {
    const diagnosed = withChecks.safeParse(e.data);
    if (!diagnosed.success) return [head];
    return [
      head,
      ...diagnosed.data.checks.map((c) => `  - ${inline(c.id)}: ${c.status}, ${inline(c.summary)}`),
    ];
  }
  return [head];
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const compactIso = (ms: number) =>
  iso(ms)
    .replace(/[-:]/g, '')
    .replace(/\d\dZ$/, 'Z');
const who = (requester: string) => (requester === 'bot' ? 'an alert (the bot)' : requester);

/** "45 s", "2 min 05 s", "1 h 02 min". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** One line of outside text in running Markdown: no line breaks, no HTML, no emphasis markers. */
function inline(text: string): string {
  return (
    text
      // Stored texts may carry Slack's mention markup (`<@U…>`): a file shows the plain id.
      .replace(/<@([UW][A-Z0-9]{1,20})>/g, '@$1')
      .replace(/\s*\n\s*/g, ' ')
      .replace(/[\\`*_[\]<>|#]/g, (c) => `\\${c}`)
      .slice(0, 2000)
  );
}

/** A table cell: inline, and a pipe never ends the cell. */
function cell(text: string): string {
  return inline(text);
}

/** Outside text as inline code: the backtick fence is longer than any run inside it. */
function code(text: string): string {
  const flat = text.replace(/\n/g, ' ');
  const longest = Math.max(0, ...[...flat.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${flat}${pad}${fence}`;
}

/** Outside text as a fenced block, the fence longer than any backtick run inside it. */
function fenced(text: string, indent: string): string[] {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [
    `${indent}${fence}text`,
    ...text
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => `${indent}${l}`),
    `${indent}${fence}`,
  ];
}
