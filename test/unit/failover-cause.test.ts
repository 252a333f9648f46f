import { describe, expect, it } from 'vitest';
import type { CheckId, CheckResult, CheckStatus, Facts } from '../../src/domain/check-result.js';
import { resultId } from '../../src/domain/check-result.js';
import {
  classifyFailover,
  type FailoverCause,
  failoverIncident,
  type SettleSample,
  settleVerdict,
} from '../../src/domain/failover.js';
import { incidentKeys } from '../../src/domain/incident.js';
import { failoverSchema } from '../../src/domain/report.js';
import { twoPiContext } from '../support/two-pi-context.js';

const ctx = twoPiContext([
  { id: 'restart-nginx', targets: { roles: ['frontend', 'spare'] } },
  { id: 'restart-keepalived', targets: { nodes: ['pi-a', 'pi-b'] } },
]);

function r(check: CheckId, status: CheckStatus, facts?: Facts, service?: string): CheckResult {
  return {
    id: resultId(check, 'pi-a', service),
    check,
    title: check,
    node: 'pi-a',
    status,
    summary: `${check} ${status}`,
    facts,
    evidence: undefined,
    errorCode: undefined,
    durationMs: 1,
  };
}

const svc = (service: string, state: string) =>
  r('service', state === 'active' ? 'ok' : 'fail', { kind: 'service', service, state }, service);
const sshOk = r('ssh', 'ok', { kind: 'ssh', reachable: true });
const httpOk = r('node-http', 'ok', {
  kind: 'http',
  status: 200,
  latencyMs: 3,
  cacheStatus: undefined,
  servedBy: 'frontend-cache',
  upstreamStatus: undefined,
});
const silentSsh = r('ssh', 'timeout', { kind: 'ssh', reachable: false, refused: false });
const silentHttp = r('node-http', 'timeout', { kind: 'transport', refused: false });
const refusedSsh = r('ssh', 'unreachable', { kind: 'ssh', reachable: false, refused: true });
const refusedHttp = r('node-http', 'unreachable', { kind: 'transport', refused: true });
const unreachableHttp = r('node-http', 'unreachable', { kind: 'transport', refused: false });

const cause = (checks: CheckResult[], running: { actionId: string; nodes: string[] }[] = []) =>
  classifyFailover({ from: 'pi-a', to: 'pi-b', checks, running });
const incidentOf = (c: FailoverCause) =>
  failoverIncident(c, { key: incidentKeys.failover('pi-a'), to: 'pi-b', ...ctx });
const words = (c: FailoverCause) => {
  const i = incidentOf(c);
  return [i.summary, ...i.advice, ...i.followUps].join(' ');
};

describe('why the VIP left a node, from what the bot sees of it', () => {
  it('SSH and HTTP get no answer: unreachable, incident 4, no action, check power and link then reflash', () => {
    for (const http of [silentHttp, unreachableHttp]) {
      const c = cause([silentSsh, http]);
      expect(c.kind).toBe('unreachable');
      expect(c.evidence).toEqual(['ssh@pi-a', 'node-http@pi-a']);
      const incident = incidentOf(c);
      expect(incident.number).toBe('4');
      expect(incident.actions).toEqual([]);
      expect(words(c)).toMatch(/power and link.*reflash/);
    }
  });

  it('resets: refusing (the host is up, its daemons down): restart advice, never reflash, no action', () => {
    for (const checks of [
      [refusedSsh, refusedHttp],
      [refusedSsh, silentHttp],
    ]) {
      const c = cause(checks);
      expect(c.kind).toBe('refusing');
      expect(incidentOf(c).actions).toEqual([]);
      expect(words(c)).toMatch(/restart/i);
      expect(words(c)).not.toMatch(/reflash/i);
    }
    expect(cause([refusedSsh, refusedHttp]).summary).toMatch(/refuses SSH and HTTP/);
  });

  it('keepalived stopped or failed: restart-keepalived offered on the old holder only; the VIP moves back', () => {
    for (const state of ['inactive', 'failed']) {
      const c = cause([sshOk, httpOk, svc('keepalived', state), svc('nginx', 'active')]);
      expect(c.kind).toBe('keepalived-down');
      const incident = incidentOf(c);
      expect(incident.actions).toEqual([
        {
          actionId: 'restart-keepalived',
          nodes: ['pi-a'],
          why: expect.stringMatching(/VIP moves back to pi-a/),
        },
      ]);
      expect(incident.advice.join(' ')).toMatch(/VIP moves back to pi-a/);
      expect(words(c)).not.toMatch(/reflash/i);
    }
  });

  it('nginx down (the track script): restart-nginx offered there', () => {
    const c = cause([sshOk, refusedHttp, svc('keepalived', 'active'), svc('nginx', 'inactive')]);
    expect(c.kind).toBe('nginx-down');
    expect(incidentOf(c).actions).toEqual([
      { actionId: 'restart-nginx', nodes: ['pi-a'], why: expect.stringMatching(/VIP moves back to pi-a/) },
    ]);
    expect(words(c)).not.toMatch(/reflash/i);
  });

  it("the bot's own action on the old holder: planned, nothing offered", () => {
    const c = cause([silentSsh, silentHttp], [{ actionId: 'restart-keepalived', nodes: ['pi-a'] }]);
    expect(c.kind).toBe('planned');
    expect(incidentOf(c).actions).toEqual([]);
    expect(cause([silentSsh, silentHttp], [{ actionId: 'restart-nginx', nodes: ['pi-b'] }]).kind).toBe(
      'unreachable',
    );
  });

  it('everything answers and runs: unexplained, nothing to restart', () => {
    const c = cause([sshOk, httpOk, svc('keepalived', 'active'), svc('nginx', 'active')]);
    expect(c.kind).toBe('unexplained');
    expect(incidentOf(c).actions).toEqual([]);
  });

  it('only the unreachable cause mentions reflashing', () => {
    const all = [
      cause([silentSsh, silentHttp]),
      cause([refusedSsh, refusedHttp]),
      cause([sshOk, httpOk, svc('keepalived', 'inactive')]),
      cause([sshOk, refusedHttp, svc('keepalived', 'active'), svc('nginx', 'failed')]),
      cause([], [{ actionId: 'restart-keepalived', nodes: ['pi-a'] }]),
    ];
    expect(all.map((c) => c.kind)).toEqual([
      'unreachable',
      'refusing',
      'keepalived-down',
      'nginx-down',
      'planned',
    ]);
    expect(all.filter((c) => /reflash/i.test(words(c))).map((c) => c.kind)).toEqual(['unreachable']);
  });

  it('a cause fits the stored report schema (failover.cause)', () => {
    const c = cause([silentSsh, silentHttp]);
    expect(failoverSchema.parse({ from: 'pi-a', to: 'pi-b', settled: true, cause: c }).cause).toEqual(c);
  });
});

describe('settling', () => {
  const s = (holders: string[] | undefined, a?: string, b = 'active'): SettleSample => ({
    holders,
    keepalived: { 'pi-a': a, 'pi-b': b },
  });
  const t = (now: number) => ({ startedAt: 0, now, settleMs: 5000 });

  it('settled once two looks in a row agree on one holder and steady keepalived states', () => {
    expect(settleVerdict([s(['pi-b'], 'inactive')], t(300)).verdict).toBe('waiting');
    expect(settleVerdict([s(['pi-b'], 'deactivating'), s(['pi-b'], 'inactive')], t(600)).verdict).toBe(
      'waiting',
    );
    expect(
      settleVerdict([s(['pi-b'], 'deactivating'), s(['pi-b'], 'inactive'), s(['pi-b'], 'inactive')], t(900))
        .verdict,
    ).toBe('settled');
    // An unreachable node's keepalived cannot be seen: the holder alone decides.
    expect(settleVerdict([s(['pi-b']), s(['pi-b'])], t(8000)).verdict).toBe('settled');
  });

  it('not while two nodes hold it, none does, or keepalived is between states', () => {
    expect(settleVerdict([s(['pi-a', 'pi-b']), s(['pi-a', 'pi-b'])], t(1000)).verdict).toBe('waiting');
    expect(settleVerdict([s([]), s([])], t(1000)).verdict).toBe('waiting');
    expect(settleVerdict([s(['pi-b'], 'deactivating'), s(['pi-b'], 'deactivating')], t(1000)).verdict).toBe(
      'waiting',
    );
  });

  it('gives up after the settle time, saying what was still moving', () => {
    const v = settleVerdict([s(['pi-a', 'pi-b']), s(['pi-b'], 'deactivating')], t(5000));
    expect(v).toEqual({ verdict: 'gave-up', reason: 'not settled after 5 s (VIP held by pi-b)' });
  });
});
