import { describe, expect, it } from 'vitest';
import { EvidenceHistoryLog } from '../../src/diagnostics/evidence-history.js';
import {
  type CheckId,
  type CheckResult,
  type CheckStatus,
  type Facts,
  resultId,
} from '../../src/domain/check-result.js';
import { type ClassifyContext, classify, type Incident } from '../../src/domain/classify.js';
import { REPORT_SCHEMA_VERSION, type StatusReport } from '../../src/domain/report.js';
import { type IncidentRecovery, incidentRecovery } from '../../src/domain/windowed-evidence.js';
import { checkPrecondition } from '../../src/remediation/precondition.js';
import { twoPiContext } from '../support/two-pi-context.js';

const ctx: ClassifyContext = twoPiContext([
  { id: 'restart-nginx', targets: { roles: ['frontend'] } },
  { id: 'restart-redis', targets: { roles: ['backend'] } },
  { id: 'restart-keepalived', targets: { nodes: ['pi-a', 'pi-b'] } },
  { id: 'flush-redis', targets: { roles: ['backend'] } },
  { id: 'disable-chaos', targets: { roles: ['frontend', 'backend'] } },
]);

function r(
  check: CheckId,
  status: CheckStatus,
  facts?: Facts,
  node?: string,
  service?: string,
  errorCode?: string,
): CheckResult {
  return {
    id: resultId(check, node, service),
    check,
    title: check,
    node,
    status,
    summary: `${check} ${status}`,
    facts,
    evidence: undefined,
    errorCode,
    durationMs: 1,
  };
}

const http = (status: number, cacheStatus?: string): Facts => ({
  kind: 'http',
  status,
  latencyMs: 5,
  cacheStatus,
  servedBy: 'frontend-cache',
  upstreamStatus: undefined,
});
const svc = (node: string, service: string, state: string) =>
  r('service', state === 'active' ? 'ok' : 'fail', { kind: 'service', service, state }, node, service);
const holders = (...h: string[]) => r('vip-owner', 'ok', { kind: 'vip-owner', holders: h, unknown: [] });

function report(...overrides: CheckResult[]): StatusReport {
  const base: CheckResult[] = [
    holders('pi-a'),
    r('vip-http', 'ok', http(200, 'HIT')),
    r('vip-api', 'ok', http(200)),
    r('orch-health', 'ok', http(200)),
    r('redis-ping', 'ok', { kind: 'redis-ping', reply: 'PONG' }),
    ...['pi-a', 'pi-b'].flatMap((n) => [
      r('ssh', 'ok', { kind: 'ssh', reachable: true }, n),
      r('chaos-flag', 'ok', { kind: 'chaos-flag', present: false }, n),
      r('firewall', 'ok', { kind: 'firewall', unexpected: [] }, n),
      svc(n, 'nginx', 'active'),
      svc(n, 'keepalived', 'active'),
    ]),
    svc('pi-b', 'redis-server', 'active'),
  ];
  const byId = new Map(base.map((c) => [c.id, c]));
  for (const o of overrides) byId.set(o.id, o);
  const checks = [...byId.values()];
  const c = classify(checks, ctx);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'status',
    startedAt: '2026-01-24T22:00:00.000Z',
    durationMs: 10,
    vip: { address: ctx.vipAddress, state: c.vip },
    healthy: c.incidents.length === 0,
    diagnosable: true,
    counts: { ok: 0, warn: 0, fail: 0, unreachable: 0, timeout: 0, unknown: 0 },
    incidents: c.incidents,
    checks,
  };
}

const nginxDown = [svc('pi-a', 'nginx', 'inactive'), r('vip-http', 'fail', http(502))];
const noVip = [holders(), r('vip-http', 'fail', http(0))];

describe('checkPrecondition', () => {
  it('still justified: ok', () => {
    const diagnosis = report(...nginxDown);
    expect(diagnosis.incidents[0]?.actions).toEqual([{ actionId: 'restart-nginx', nodes: ['pi-a'] }]);
    expect(
      checkPrecondition({
        proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
        diagnosis,
        current: report(...nginxDown),
      }),
    ).toEqual({ ok: true });
  });

  it('nginx already back: refused, saying what changed', () => {
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: report(),
    });
    expect(result).toEqual({
      ok: false,
      changed: [
        'incident 1 (UI is slow or blank) is no longer present on pi-a: service:nginx@pi-a was fail, now ok; vip-http was fail, now ok',
      ],
    });
  });

  it('the orchestrator is now the cause: golden rule 1', () => {
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: report(...nginxDown, r('orch-health', 'fail', http(503)), r('vip-api', 'fail', http(503))),
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.changed[0]).toMatch(/orchestrator is now the cause \(incident 5.*golden rule 1/);
    expect(result.changed.join('\n')).toMatch(/held back: Golden rule 1/);
  });

  it('a re-check without the orchestrator cannot clear golden rule 1', () => {
    const current = report(...nginxDown);
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: { ...current, checks: current.checks.filter((c) => c.check !== 'orch-health') },
    });
    expect(result).toEqual({ ok: false, changed: [expect.stringMatching(/re-run a full status/)] });
  });

  it('the host key changed after the diagnosis: refused, nothing is sent', () => {
    const mismatch = r(
      'ssh',
      'fail',
      { kind: 'ssh', reachable: false },
      'pi-a',
      undefined,
      'OKOME_SSH_HOST_KEY_MISMATCH',
    );
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: report(...nginxDown, mismatch),
    });
    expect(result).toEqual({
      ok: false,
      changed: [expect.stringMatching(/pi-a's SSH host key no longer matches the pinned key/)],
    });
  });

  it('the VIP holder changed since the diagnosis (VIP-related action)', () => {
    const diagnosis = report(...noVip);
    expect(diagnosis.incidents[0]?.actions).toEqual([
      { actionId: 'restart-keepalived', nodes: ['pi-a', 'pi-b'] },
    ]);
    const proposed = { actionId: 'restart-keepalived', nodes: ['pi-a', 'pi-b'] };
    expect(checkPrecondition({ proposed, diagnosis, current: report(...noVip) })).toEqual({ ok: true });
    const result = checkPrecondition({ proposed, diagnosis, current: report(holders('pi-b')) });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.changed).toContain(
      'the VIP holder changed since the diagnosis: it was held by no node, it is now held by pi-b',
    );
  });

  it('vipRelated compares the holder for any action', () => {
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: report(...nginxDown, holders('pi-b')),
      vipRelated: true,
    });
    expect(result).toEqual({
      ok: false,
      changed: ['the VIP holder changed since the diagnosis: it was held by pi-a, it is now held by pi-b'],
    });
  });

  it('an action now only held back (chaos explains it) is refused with the hold reason', () => {
    const chaos = r('chaos-flag', 'fail', { kind: 'chaos-flag', present: true }, 'pi-a');
    const result = checkPrecondition({
      proposed: { actionId: 'restart-nginx', nodes: ['pi-a'] },
      diagnosis: report(...nginxDown),
      current: report(...nginxDown, chaos),
    });
    expect(result).toEqual({
      ok: false,
      changed: [
        'restart-nginx on pi-a is now held back: Part of incident 7 (chaos): disable-chaos restarts the services.',
      ],
    });
  });

  it('a node that dropped out of the proposal is named', () => {
    const proposed = { actionId: 'restart-keepalived', nodes: ['pi-a', 'pi-b'] };
    const unreachable = r('ssh', 'unreachable', { kind: 'ssh', reachable: false }, 'pi-b');
    const result = checkPrecondition({
      proposed,
      diagnosis: report(...noVip),
      current: report(...noVip, unreachable),
    });
    expect(result).toEqual({
      ok: false,
      changed: [expect.stringMatching(/^incident 3 .* no longer present on pi-b/)],
    });
  });

  it('an action the diagnosis never proposed is refused', () => {
    const result = checkPrecondition({
      proposed: { actionId: 'flush-redis', nodes: ['pi-b'] },
      diagnosis: report(...nginxDown),
      current: report(...nginxDown),
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.changed[0]).toBe('the diagnosis did not propose flush-redis on pi-b');
  });
});

const hitRatio = (status: CheckStatus, ratio: number, source: 'window' | 'cumulative' = 'window') =>
  r('redis-hit-ratio', status, {
    kind: 'hit-ratio',
    ratio,
    hits: ratio * 1000,
    misses: 1000 - ratio * 1000,
    source,
  });
const budgets = (...runaway: { agent: string; count: number }[]) =>
  r('redis-budget', runaway.length > 0 ? 'warn' : 'ok', {
    kind: 'redis-budget',
    budgetKeys: 9,
    rateLimitKeys: 4,
    limit: 60,
    runaway,
  });
/** Incident 6 as the lab's faults make it: a miss storm and two agents at or over their budget. */
const storm = [
  hitRatio('warn', 0.05),
  budgets({ agent: 'planner-2', count: 75 }, { agent: 'planner-1', count: 60 }),
];
/** The minute rolled over: the new window's counters are low; the ratio fell back to cumulative. */
const nextMinute = [hitRatio('warn', 0.06, 'cumulative'), budgets()];
const orchestratorDown = [r('orch-health', 'fail', http(503)), r('vip-api', 'fail', http(503))];

describe('checkPrecondition: incident 6 rests on windowed evidence', () => {
  const T0 = Date.parse('2026-01-24T22:00:40.000Z'); // 40 s into a rate-limit minute
  const flush = { actionId: 'flush-redis', nodes: ['pi-b'] };
  const policy = { recoveryMs: 300_000, redisHitRatio: 0.5, nginxHitRatio: 0.3, minLookups: 20 };

  /** An injected clock and the samples the diagnostics would have taken at each tick. */
  function timeline() {
    let t = T0;
    const history = new EvidenceHistoryLog({ keepMs: 3_600_000, now: () => t });
    let hits = 10_000;
    let misses = 90_000;
    const sample = (opts: { hits: number; misses: number; atLimit: { agent: string; count: number }[] }) => {
      hits += opts.hits;
      misses += opts.misses;
      history.addCounters({ at: t, hits, misses });
      history.addBudget({ at: t, window: Math.floor(t / 60_000), atLimit: opts.atLimit, limit: 60 });
    };
    return {
      now: () => t,
      advance: (ms: number) => {
        t += ms;
      },
      sample,
      recovery:
        (diagnosis: StatusReport) =>
        (origin: Incident): IncidentRecovery =>
          incidentRecovery(origin, diagnosis.checks, {
            history: history.snapshot(),
            now: t,
            since: Date.parse(diagnosis.startedAt),
            policy,
          }),
    };
  }
  const diagnosedAt = (at: number, ...checks: CheckResult[]): StatusReport => ({
    ...report(...checks),
    startedAt: new Date(at).toISOString(),
  });

  it('the minute rolled over between the diagnosis and the last approval: still runs (golden rule 2)', () => {
    const clock = timeline();
    const diagnosis = diagnosedAt(clock.now(), ...storm);
    expect(diagnosis.incidents.map((i) => i.key)).toEqual(['6:pi-b']);
    clock.sample({ hits: 5, misses: 95, atLimit: [{ agent: 'planner-2', count: 75 }] });
    clock.advance(25_000); // the second approver clicks 5 s into the next minute
    clock.sample({ hits: 0, misses: 3, atLimit: [] });
    const current = report(...nextMinute);
    expect(current.incidents).toEqual([]);
    expect(
      checkPrecondition({ proposed: flush, diagnosis, current, recovery: clock.recovery(diagnosis) }),
    ).toEqual({ ok: true });
  });

  it('recovered over the whole span since the diagnosis: refused, saying what recovered', () => {
    const clock = timeline();
    const diagnosis = diagnosedAt(clock.now(), ...storm);
    clock.sample({ hits: 5, misses: 95, atLimit: [{ agent: 'planner-2', count: 75 }] });
    for (let i = 0; i < 6; i++) {
      clock.advance(60_000);
      clock.sample({ hits: 950, misses: 50, atLimit: [] });
    }
    const result = checkPrecondition({
      proposed: flush,
      diagnosis,
      current: report(hitRatio('ok', 0.95), budgets()),
      recovery: clock.recovery(diagnosis),
    });
    expect(result).toEqual({
      ok: false,
      changed: [
        'incident 6 (Cache miss storm / GPU overload) has recovered: Redis hit ratio 95 % over the last 300 s (5000 lookups); no budget counter at its limit in 5 window(s) over 300 s',
      ],
    });
  });

  it('the orchestrator went down after the diagnosis (incident 5): refused on golden rule 1, no drifted numbers', () => {
    const clock = timeline();
    const diagnosis = diagnosedAt(clock.now(), ...storm);
    clock.sample({ hits: 5, misses: 95, atLimit: [{ agent: 'planner-2', count: 75 }] });
    clock.advance(25_000);
    clock.sample({ hits: 0, misses: 3, atLimit: [] });
    const result = checkPrecondition({
      proposed: flush,
      diagnosis,
      current: report(...nextMinute, ...orchestratorDown),
      recovery: clock.recovery(diagnosis),
    });
    expect(result).toEqual({
      ok: false,
      changed: [
        expect.stringMatching(
          /^the orchestrator is now the cause \(incident 5: orchestrator \/health: .*\): golden rule 1, do not touch cache nodes$/,
        ),
      ],
    });
  });

  it('the orchestrator went down within the same minute: refused, the flush now held back', () => {
    const clock = timeline();
    const diagnosis = diagnosedAt(clock.now(), ...storm);
    const result = checkPrecondition({
      proposed: flush,
      diagnosis,
      current: report(...storm, ...orchestratorDown),
      recovery: clock.recovery(diagnosis),
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.changed).toEqual([
      expect.stringMatching(/^the orchestrator is now the cause \(incident 5/),
      expect.stringMatching(/^flush-redis on pi-b is now held back: Golden rule 1/),
    ]);
  });
});
