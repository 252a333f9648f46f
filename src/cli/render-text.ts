import type { CheckStatus } from '../domain/check-result.js';
import type { Isolation, VipState } from '../domain/classify.js';
import type { StatusReport } from '../domain/report.js';

/**
 * The terminal report: VIP holder first, incidents with evidence and actions, then every check.
 * A bot that reached nothing says so instead: nothing it saw is about the cache layer.
 */

const MARK: Record<CheckStatus, string> = {
  ok: '✓',
  warn: '!',
  fail: '✗',
  unreachable: '⊘',
  timeout: '⌛',
  unknown: '?',
};

const COLOUR: Record<CheckStatus, number> = {
  ok: 32,
  warn: 33,
  fail: 31,
  unreachable: 31,
  timeout: 35,
  unknown: 35,
};

export function vipLine(address: string, state: VipState): string {
  switch (state.kind) {
    case 'single':
      return `VIP ${address} is held by ${state.holder}`;
    case 'none':
      return `VIP ${address} is held by NO node`;
    case 'split':
      return `VIP ${address} SPLIT BRAIN: held by ${state.holders.join(' and ')}`;
    case 'unknown':
      return `VIP ${address}: holder unknown (${state.reason})`;
  }
}

export function renderText(report: StatusReport, options: { colour: boolean }): string {
  const paint = (code: number, text: string) => (options.colour ? `\u001b[${code}m${text}\u001b[0m` : text);
  const bold = (text: string) => (options.colour ? `\u001b[1m${text}\u001b[0m` : text);
  const out: string[] = [];
  const byId = new Map(report.checks.map((c) => [c.id, c]));
  const checkLine = (id: string): string | undefined => {
    const c = byId.get(id);
    return c === undefined ? undefined : `  ${paint(COLOUR[c.status], MARK[c.status])} ${c.id}: ${c.summary}`;
  };
  if (report.isolation !== undefined) {
    out.push(...isolationLines(report.isolation, checkLine, (t) => bold(paint(31, t))));
  } else {
    const vip = vipLine(report.vip.address, report.vip.state);
    out.push(bold(report.vip.state.kind !== 'single' ? paint(31, vip) : vip));
    if (report.incidents.length === 0) {
      out.push(
        report.healthy
          ? paint(32, 'Healthy: no incident.')
          : paint(33, 'No incident, but some checks did not pass (see below).'),
      );
    }
  }
  for (const incident of report.incidents) {
    out.push('');
    out.push(
      bold(
        paint(
          31,
          `INCIDENT ${incident.number} — ${incident.title}${incident.nodes.length > 0 ? ` (${incident.nodes.join(', ')})` : ''}`,
        ),
      ),
    );
    out.push(`  ${incident.summary}`);
    for (const id of incident.evidence) {
      const line = checkLine(id);
      if (line !== undefined) out.push(line);
    }
    for (const a of incident.actions)
      out.push(`  → proposed: ${a.actionId} on ${a.nodes.join(', ')} (needs approval in Slack)`);
    if (incident.held !== undefined) {
      out.push(
        `  → held: ${incident.held.actions.map((a) => a.actionId).join(', ')}: ${incident.held.reason}`,
      );
    }
    if (incident.actions.length === 0 && incident.held === undefined)
      out.push('  → no cache-node action (runbook)');
    for (const a of incident.advice) out.push(`  • ${a}`);
    for (const f of incident.followUps) out.push(`  follow-up: ${f}`);
  }
  out.push('');
  out.push(bold('Checks'));
  for (const c of report.checks) {
    out.push(
      `  ${paint(COLOUR[c.status], `${MARK[c.status]} ${c.status.padEnd(11)}`)} ${c.id.padEnd(32)} ${c.summary}`,
    );
  }
  const n = report.counts;
  out.push('');
  out.push(
    `${report.checks.length} checks in ${report.durationMs} ms: ${n.ok} ok, ${n.warn} warn, ${n.fail} fail, ${n.unreachable} unreachable, ${n.timeout} timeout, ${n.unknown} unknown; ${
      report.isolation === undefined
        ? `${report.incidents.length} incident(s)`
        : 'cannot reach the cache layer'
    }`,
  );
  return `${out.join('\n')}\n`;
}

function isolationLines(
  isolation: Isolation,
  checkLine: (id: string) => string | undefined,
  alarm: (text: string) => string,
): string[] {
  const sentence = isolation.summary.charAt(0).toUpperCase() + isolation.summary.slice(1);
  return [
    alarm(`${sentence}.`),
    `  ${isolation.detail}`,
    ...isolation.evidence.flatMap((id) => checkLine(id) ?? []),
    ...isolation.advice.map((a) => `  • ${a}`),
    '  No incident opened, no Pi declared dead, no action offered.',
  ];
}
