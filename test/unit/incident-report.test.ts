import { describe, expect, it } from 'vitest';
import {
  buildIncidentReport,
  duration,
  type ReportApproval,
  type ReportIncident,
  type ReportTimelineEntry,
} from '../../src/domain/incident-report.js';

const T0 = Date.parse('2026-12-02T03:12:00Z');
const at = (seconds: number) => T0 + seconds * 1000;

const redisIncident: ReportIncident = {
  key: '2:pi-b',
  number: '2',
  title: 'Redis down',
  status: 'resolved',
  requester: 'U0OPS',
  openedAt: at(0),
  resolvedAt: at(190),
  resolvedReason: 'A status found its checks healthy again.',
  acknowledgedBy: 'U0APPROVER1',
  acknowledgedAt: at(42),
  reopenedCount: 0,
};

const redisTimeline: ReportTimelineEntry[] = [
  {
    at: at(0),
    kind: 'diagnosis',
    text: 'Opened: Redis on pi-b is down',
    data: {
      evidence: ['redis-ping', 'service:redis-server@pi-b'],
      actions: [{ actionId: 'restart-redis', nodes: ['pi-b'] }],
      held: null,
      requester: 'U0OPS',
      checks: [
        { id: 'redis-ping', status: 'unreachable', summary: 'connection refused' },
        { id: 'service:redis-server@pi-b', status: 'fail', summary: 'redis-server is inactive' },
      ],
    },
  },
  { at: at(42), kind: 'note', text: 'Acknowledged by U0APPROVER1', data: { user: 'U0APPROVER1' } },
  {
    at: at(121),
    kind: 'approval',
    text: 'Running Restart Redis on pi-b, approved by U0APPROVER1',
    data: null,
  },
  {
    at: at(124),
    kind: 'command',
    text: 'pi-b: sudo systemctl restart redis-server → 0 (2810 ms)',
    data: {
      node: 'pi-b',
      command: 'sudo systemctl restart redis-server',
      exitCode: 0,
      durationMs: 2810,
      stdout: 'restarted ``` with a fence inside\n',
      stderr: '',
      truncated: false,
    },
  },
  {
    at: at(127),
    kind: 'outcome',
    text: 'Succeeded: Restart Redis on pi-b: 1 step(s) ran and verification passed',
    data: {
      verification: {
        ok: true,
        attempts: 2,
        checks: [
          { id: 'redis-ping', status: 'ok', summary: 'PONG in 1 ms' },
          { id: 'service:redis-server@pi-b', status: 'ok', summary: 'redis-server is active' },
        ],
      },
    },
  },
  {
    at: at(190),
    kind: 'resolved',
    text: 'A status found its checks healthy again.',
    data: {
      cause: 'healthy-status',
      checks: [{ id: 'redis-ping', status: 'ok', summary: 'PONG in 2 ms' }],
    },
  },
];

const restartApproval: ReportApproval = {
  id: 'ap_aaaaaaaaaaaaaaaaaaaa',
  actionId: 'restart-redis',
  targets: ['pi-b'],
  commands: [{ node: 'pi-b', command: 'sudo systemctl restart redis-server' }],
  requiredApprovals: 1,
  approvers: [{ user: 'U0APPROVER1', at: at(120) }],
  requester: 'U0OPS',
  state: 'succeeded',
  createdAt: at(1),
  rejectedBy: null,
  outcome: 'Restart Redis on pi-b: 1 step(s) ran and verification passed',
};

describe('post-incident report', () => {
  it('incident 2: redis down → restart approved → verified → resolved, every step in order', () => {
    const report = buildIncidentReport({
      incident: redisIncident,
      timeline: redisTimeline,
      alerts: [],
      approvals: [restartApproval],
      generatedAt: at(200),
    });
    expect(report.timeToAcknowledgeMs).toBe(42_000);
    expect(report.timeToResolveMs).toBe(190_000);
    expect(report.filename).toBe('okome-incident-2-pi-b-20261202T0312Z.md');
    const md = report.markdown;
    expect(md).toContain('| Time to acknowledge | 42 s |');
    expect(md).toContain('| Time to resolve | 3 min 10 s |');
    // Timeline in order: diagnosis, ack, approval click, run, command with output, verification, resolve.
    const order = [
      '**diagnosis** Opened: Redis on pi-b is down',
      '**note** Acknowledged by U0APPROVER1',
      '**approval** restart-redis approved by U0APPROVER1',
      '**approval** Running Restart Redis on pi-b',
      '**command** pi-b: sudo systemctl restart redis-server',
      'exit 0 in 2810 ms',
      'restarted ``` with a fence inside',
      'verification passed after 2 attempt(s)',
      '**resolved** A status found its checks healthy again.',
    ].map((s) => md.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // The output's own ``` cannot close the block: the fence is longer.
    expect(md).toContain('  ````text\n  restarted ``` with a fence inside\n  ````');
    // Before/after: the redis checks failed, then passed; the resolution is the latest judgement.
    expect(report.checks).toEqual([
      {
        id: 'redis-ping',
        before: { id: 'redis-ping', status: 'unreachable', summary: 'connection refused' },
        after: { id: 'redis-ping', status: 'ok', summary: 'PONG in 2 ms', at: at(190), source: 'resolution' },
      },
      {
        id: 'service:redis-server@pi-b',
        before: { id: 'service:redis-server@pi-b', status: 'fail', summary: 'redis-server is inactive' },
        after: {
          id: 'service:redis-server@pi-b',
          status: 'ok',
          summary: 'redis-server is active',
          at: at(127),
          source: 'verification',
        },
      },
    ]);
    expect(md).toContain(
      '| redis-ping | unreachable: connection refused | ok: PONG in 2 ms | 2026-12-02T03:15:10Z (resolution) |',
    );
    expect(md).toContain('- restart-redis on pi-b: succeeded, offered 2026-12-02T03:12:01Z');
    expect(md).toContain('  - approved by U0APPROVER1 at 2026-12-02T03:14:00Z');
    expect(md).toContain('  - command on pi-b: `sudo systemctl restart redis-server`');
  });

  it('an alert-opened incident resolved by its alert: alerts listed, no checks to compare', () => {
    const report = buildIncidentReport({
      incident: {
        ...redisIncident,
        key: 'alert:diskpressure',
        number: 'alert',
        title: 'DiskPressure',
        requester: 'bot',
        acknowledgedBy: 'U0OPS',
        acknowledgedAt: at(300),
        resolvedAt: at(3700),
        resolvedReason: 'Every alert resolved and the diagnosis is done.',
      },
      timeline: [
        { at: at(0), kind: 'alert', text: 'DiskPressure on pi-a firing', data: { fingerprint: 'f1' } },
        { at: at(300), kind: 'note', text: 'Acknowledged by U0OPS', data: { user: 'U0OPS' } },
        { at: at(3690), kind: 'alert', text: 'DiskPressure on pi-a resolved', data: { fingerprint: 'f1' } },
        {
          at: at(3700),
          kind: 'resolved',
          text: 'Every alert resolved and the diagnosis is done.',
          data: { cause: 'alerts-resolved' },
        },
      ],
      alerts: [
        {
          alertname: 'Disk|Pressure',
          node: 'pi-a',
          status: 'resolved',
          firstSeen: at(0),
          lastSeen: at(3690),
          count: 12,
        },
      ],
      approvals: [],
      generatedAt: at(3800),
    });
    expect(report.timeToAcknowledgeMs).toBe(300_000);
    expect(report.timeToResolveMs).toBe(3_700_000);
    expect(report.markdown).toContain('| Time to resolve | 1 h 01 min |');
    expect(report.markdown).toContain('by an alert (the bot)');
    // A pipe in an alert name stays inside its cell.
    expect(report.markdown).toContain('| Disk\\|Pressure | pi-a | resolved |');
    expect(report.markdown).toContain('No diagnosis named failing checks');
    expect(report.checks).toEqual([]);
    const firing = report.markdown.indexOf('DiskPressure on pi-a firing');
    const resolved = report.markdown.indexOf('DiskPressure on pi-a resolved');
    expect(firing).toBeGreaterThan(0);
    expect(resolved).toBeGreaterThan(firing);
  });

  it('one never acknowledged, still open: says so, and a check never judged again', () => {
    const report = buildIncidentReport({
      incident: {
        ...redisIncident,
        status: 'open',
        resolvedAt: null,
        resolvedReason: null,
        acknowledgedBy: null,
        acknowledgedAt: null,
      },
      timeline: [redisTimeline[0] as ReportTimelineEntry],
      alerts: [],
      approvals: [{ ...restartApproval, approvers: [], state: 'expired', outcome: 'expired after 15 min' }],
      generatedAt: at(900),
    });
    expect(report.timeToAcknowledgeMs).toBeNull();
    expect(report.timeToResolveMs).toBeNull();
    expect(report.markdown).toContain('| Acknowledged | never |');
    expect(report.markdown).toContain('| Time to acknowledge | never acknowledged |');
    expect(report.markdown).toContain('| Resolved | not yet (open) |');
    expect(report.checks.map((c) => c.after)).toEqual([undefined, undefined]);
    expect(report.markdown).toContain('| not judged again |');
  });

  it('outside text cannot inject Markdown structure', () => {
    const report = buildIncidentReport({
      incident: { ...redisIncident, title: 'x\n# injected <b>' },
      timeline: [{ at: at(1), kind: 'note', text: 'line\n## not a heading', data: null }],
      alerts: [],
      approvals: [],
      generatedAt: at(2),
    });
    expect(report.markdown).not.toMatch(/^#+ (injected|not a heading)/m);
    expect(report.markdown).toContain('x \\# injected \\<b\\>');
    const byHand = buildIncidentReport({
      incident: { ...redisIncident, resolvedReason: 'Resolved by hand by <@U0APPROVER2>.' },
      timeline: [],
      alerts: [],
      approvals: [],
      generatedAt: at(2),
    });
    expect(byHand.markdown).toContain('Resolved by hand by @U0APPROVER2.');
  });

  it('durations read as people say them', () => {
    expect(duration(0)).toBe('0 s');
    expect(duration(59_400)).toBe('59 s');
    expect(duration(125_000)).toBe('2 min 05 s');
    expect(duration(3_720_000)).toBe('1 h 02 min');
  });
});
