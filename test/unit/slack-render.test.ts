import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/domain/check-result.js';
import { type ClassifyContext, classify } from '../../src/domain/classify.js';
import { REPORT_SCHEMA_VERSION, type StatusReport } from '../../src/domain/report.js';
import { incidentNumbers } from '../../src/domain/runbook.js';
import {
  renderEvidence,
  renderHelp,
  renderIncidentRoot,
  renderRunbookCard,
  renderUsage,
} from '../../src/slack/render/incident-message.js';
import {
  channelLink,
  clip,
  codeBlock,
  escapeClipped,
  escapeText,
  inlineCode,
  mentionUser,
} from '../../src/slack/render/mrkdwn.js';
import { sparkline } from '../../src/slack/render/sparkline.js';
import { renderCheckList, renderProgress, renderSummary } from '../../src/slack/render/status-message.js';
import { checkMessage } from '../support/slack-emulator/block-kit-limits.js';
import { twoPiContext } from '../support/two-pi-context.js';

const ctx: ClassifyContext = twoPiContext([{ id: 'restart-nginx', targets: { roles: ['frontend'] } }]);

function check(
  id: string,
  status: CheckResult['status'],
  summary: string,
  extra: Partial<CheckResult> = {},
): CheckResult {
  const [head = id, node] = id.split('@');
  const [name = head] = head.split(':');
  return {
    id,
    check: name as CheckResult['check'],
    title: name,
    node,
    status,
    summary,
    facts: undefined,
    evidence: undefined,
    errorCode: undefined,
    durationMs: 12,
    ...extra,
  };
}

function reportOf(checks: CheckResult[]): StatusReport {
  const c = classify(checks, ctx);
  const counts = { ok: 0, warn: 0, fail: 0, unreachable: 0, timeout: 0, unknown: 0 };
  for (const x of checks) counts[x.status] += 1;
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'status',
    startedAt: '2026-11-29T03:12:07.000Z',
    durationMs: 812,
    vip: { address: '10.86.0.18', state: c.vip },
    healthy: c.incidents.length === 0 && c.isolation === undefined,
    diagnosable: c.isolation === undefined,
    counts,
    ...(c.isolation === undefined ? {} : { isolation: c.isolation }),
    incidents: c.incidents,
    checks,
  };
}

const nginxDown: CheckResult[] = [
  check('vip-owner', 'ok', 'pi-a holds 10.86.0.18', {
    facts: { kind: 'vip-owner', holders: ['pi-a'], unknown: [] },
  }),
  check('vip-http', 'unreachable', 'connection refused'),
  check('orch-health', 'ok', '200 in 3 ms'),
  check('service:nginx@pi-a', 'fail', 'nginx is inactive', {
    facts: { kind: 'service', service: 'nginx', state: 'inactive' },
    evidence: '$ systemctl is-active nginx\ninactive\n(exit 3)',
  }),
  check('service:keepalived@pi-a', 'ok', 'keepalived is active'),
];

describe('Block Kit rendering (golden files)', () => {
  it('summary of an incident: VIP holder first, incident named with its number', async () => {
    const msg = renderSummary(reportOf(nginxDown), { hitRatios: [0.9, 0.8, null, 0.4], requestedBy: 'U1' });
    expect(msg.blocks[1]).toMatchObject({
      type: 'section',
      text: { text: expect.stringContaining('VIP `10.86.0.18` is held by *pi-a*') },
    });
    expect(JSON.stringify(msg.blocks)).toContain('Incident 1 — UI is slow or blank (pi-a)');
    await expect(JSON.stringify(msg, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/summary-incident-1.json',
    );
  });

  it('healthy summary', async () => {
    const msg = renderSummary(
      reportOf([
        check('vip-owner', 'ok', 'pi-a holds it', {
          facts: { kind: 'vip-owner', holders: ['pi-a'], unknown: [] },
        }),
      ]),
    );
    await expect(JSON.stringify(msg, null, 2)).toMatchFileSnapshot('../fixtures/golden/summary-healthy.json');
  });

  it('isolation: the verdict leads in place of the VIP line and incidents', async () => {
    const refused = (id: string, what: string) => check(id, 'unreachable', `${what}: connection refused`);
    const msg = renderSummary(
      reportOf([
        check('vip-owner', 'unknown', 'no reachable node holds 10.86.0.18', {
          facts: { kind: 'vip-owner', holders: [], unknown: ['pi-a', 'pi-b'] },
        }),
        refused('orch-health', 'GET http://10.86.0.25:8000/health'),
        refused('vip-http', 'HEAD http://10.86.0.18/'),
        ...['pi-a', 'pi-b'].flatMap((n) => [
          refused(`ssh@${n}`, `ssh ${n}`),
          refused(`node-http@${n}`, 'HEAD'),
        ]),
      ]),
      { requestedBy: 'U1' },
    );
    expect(msg.blocks[0]).toMatchObject({
      type: 'header',
      text: { text: 'OKOME status: cannot reach the cache layer' },
    });
    expect(msg.blocks[1]).toMatchObject({
      type: 'section',
      text: {
        text: expect.stringContaining(
          "*Cannot reach the cache layer from here: check the bot's network and config.*",
        ),
      },
    });
    expect(msg.text).toContain("Cannot reach the cache layer from here: check the bot's network and config.");
    expect(JSON.stringify(msg)).not.toMatch(/Incident \d|VIP `10\.86\.0\.18`|Reflash/);
    const verdict = checkMessage(msg);
    expect(verdict.ok ? [] : verdict.errors).toEqual([]);
    await expect(JSON.stringify(msg, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/summary-isolated.json',
    );
  });

  it('incident root and evidence thread', async () => {
    const report = reportOf(nginxDown);
    const incident = report.incidents[0];
    expect(incident).toBeDefined();
    if (incident === undefined) return;
    const root = renderIncidentRoot(incident, report, { status: 'open' });
    const evidence = renderEvidence(incident, report.checks);
    expect(JSON.stringify(evidence)).toContain('```$ systemctl is-active nginx');
    await expect(JSON.stringify({ root, evidence }, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/incident-1-thread.json',
    );
  });

  it('a resolved incident root keeps its title and evidence summary, struck, with when and why', async () => {
    const report = reportOf(nginxDown);
    const incident = report.incidents[0];
    if (incident === undefined) throw new Error('no incident');
    const open = renderIncidentRoot(incident, report, { status: 'open' });
    const resolved = renderIncidentRoot(incident, report, {
      status: 'resolved',
      resolvedAt: Date.UTC(2026, 10, 29, 3, 14, 7),
      reason: 'A status found its checks healthy again.',
    });
    const texts = JSON.stringify(resolved.blocks);
    expect(texts).toContain('~Incident 1 — UI is slow or blank (pi-a)~');
    expect(texts).toContain(escapeText(incident.summary));
    expect(texts).toContain(
      ':large_green_circle: Resolved at 03:14:07 UTC — A status found its checks healthy again.',
    );
    expect(resolved.text).toBe(`Resolved: ${open.text}`);
    // The VIP line and the summary stay as diagnosed.
    expect(resolved.blocks[0]).toEqual(open.blocks[0]);
    const verdict = checkMessage(resolved);
    expect(verdict.ok ? [] : verdict.errors).toEqual([]);
    await expect(JSON.stringify(resolved, null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/incident-1-resolved.json',
    );
  });

  it('progress, runbook card and help', async () => {
    const progress = renderProgress('status', 7, 27, [nginxDown[1] as CheckResult]);
    await expect(JSON.stringify(progress, null, 2)).toMatchFileSnapshot('../fixtures/golden/progress.json');
    await expect(JSON.stringify(renderRunbookCard('5'), null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/runbook-card-5.json',
    );
    await expect(JSON.stringify(renderHelp(['status', 'pi-a']), null, 2)).toMatchFileSnapshot(
      '../fixtures/golden/help.json',
    );
  });
});

describe('Slack limits', () => {
  const huge: CheckResult[] = Array.from({ length: 300 }, (_, i) =>
    check(`service:svc${i}@pi-a`, 'fail', `${'x'.repeat(900)}<script>&`, {
      evidence: 'line\n'.repeat(5000),
      facts: { kind: 'service', service: `svc${i}`, state: 'failed' },
    }),
  );

  it('every message of a huge report passes the Slack limit checker', () => {
    const report = reportOf([...nginxDown, ...huge]);
    const messages = [
      renderSummary(report),
      renderProgress('status', 1, 300, huge),
      ...renderCheckList(report.checks),
      ...report.incidents.flatMap((i) => [
        renderIncidentRoot(i, report, { status: 'open' }),
        ...renderEvidence(i, report.checks),
      ]),
      ...incidentNumbers.map((n) => renderRunbookCard(n)),
      renderUsage('x'.repeat(10_000)),
    ];
    for (const m of messages) {
      const verdict = checkMessage(m);
      expect(verdict.ok ? [] : verdict.errors).toEqual([]);
      expect(m.text.length).toBeLessThanOrEqual(4000);
    }
    expect(JSON.stringify(renderSummary(report))).toContain('…and');
  });

  it('escapes Slack control characters and keeps code blocks closed', () => {
    expect(escapeText('<@U1> & <!channel>')).toBe('&lt;@U1&gt; &amp; &lt;!channel&gt;');
    const block = codeBlock('a```b\n'.repeat(2000));
    expect(block.startsWith('```')).toBe(true);
    expect(block.endsWith('```')).toBe(true);
    expect(block.slice(3, -3)).not.toContain('```');
    expect(block.length).toBeLessThanOrEqual(3000);
    expect(clip('abcdef', 100)).toBe('abcdef');
    expect(clip('x'.repeat(5000), 3000)).toMatch(/…and \d+ more characters$/);
  });

  it('clips outside text before escaping it: no entity, mention or emoji is ever cut in half', () => {
    const entity = /&(?!amp;|lt;|gt;)|&(?:a|am|l|g|lt|gt)?$/;
    for (let max = 40; max < 120; max += 1) {
      for (const raw of [
        '<'.repeat(200),
        `a${'&'.repeat(200)}`,
        '😀'.repeat(200),
        '<!channel> '.repeat(40),
      ]) {
        const block = codeBlock(raw, max);
        expect(block.length).toBeLessThanOrEqual(max);
        const inside = block.slice(3, -3);
        expect(inside.split('\n')[0]).not.toMatch(entity);
        expect(inside).not.toMatch(/[<>]/);
        expect(inside).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
        const escaped = escapeClipped(raw, max);
        expect(escaped.length).toBeLessThanOrEqual(max);
        expect(escaped.split('\n')[0]).not.toMatch(entity);
      }
      // Bot-built mrkdwn: the cut falls before an entity or the bot's own mention, not inside.
      const built = `${'x'.repeat(10)}${'&lt; <@U0APPROVER1> '.repeat(20)}`;
      const cut = clip(built, max).split('\n')[0] ?? '';
      expect(cut).not.toMatch(entity);
      expect(cut).not.toMatch(/<[^>]*$/);
    }
  });

  it('inline code stays one closed span, within its limit, and counts what it left out', () => {
    expect(inlineCode('systemctl restart nginx')).toBe('`systemctl restart nginx`');
    expect(inlineCode('a`b <!channel>')).toBe("`a'b &lt;!channel&gt;`");
    for (const raw of ['x'.repeat(500), `a && b; ${'&<>'.repeat(100)}`, '😀'.repeat(300)]) {
      for (const max of [40, 100, 300]) {
        const code = inlineCode(raw, max);
        expect(code.length).toBeLessThanOrEqual(max);
        const m = /^`([^`]*)…` \(\+(\d+) more characters\)$/.exec(code);
        expect(m, code).not.toBeNull();
        const kept = (m?.[1] ?? '').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
        expect(raw.startsWith(kept)).toBe(true);
        expect(Number(m?.[2])).toBe(raw.length - kept.length);
        expect(m?.[1]).not.toMatch(/&[a-z]*$/);
      }
    }
  });

  it("builds the bot's own mentions and channel links only from well-formed IDs", () => {
    expect(mentionUser('U0APPROVER1')).toBe('<@U0APPROVER1>');
    expect(mentionUser('bot')).toBe('the bot');
    expect(mentionUser('U1> <!channel')).toBe('U1&gt; &lt;!channel');
    expect(channelLink('C0OPS')).toBe('<#C0OPS>');
    expect(channelLink('C0OPS|x> <!here')).toBe('C0OPS|x&gt; &lt;!here');
  });

  it('help and usage show their placeholders escaped, and the usage escapes the echoed command', () => {
    const help = JSON.stringify(renderHelp(['ssh@pi-a']));
    expect(help).not.toMatch(/<check-id|<1-7/);
    const usage = renderUsage('Unknown check target `<!channel>`.');
    expect(usage.text).toContain('`&lt;!channel&gt;`');
    expect(JSON.stringify(usage)).not.toContain('<!channel>');
  });

  it('draws a sparkline with gaps for missing samples', () => {
    expect(sparkline([0, 0.5, 1, null])).toBe('▁▅█·');
  });
});
