import { describe, expect, it } from 'vitest';
import {
  type CheckId,
  type CheckResult,
  type CheckStatus,
  type Facts,
  resultId,
} from '../../src/domain/check-result.js';
import { type ClassifyContext, classify } from '../../src/domain/classify.js';
import { REPORT_SCHEMA_VERSION, type StatusReport } from '../../src/domain/report.js';
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
        expect.stringMatching(
          /^incident 1 \(UI is slow or blank\) is no longer present on pi-a: service:nginx@pi-a: was fail \(service fail\), now ok/,
        ),
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
