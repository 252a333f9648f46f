import { describe, expect, it } from 'vitest';
import { vipProbeFromDiagnostics } from '../../src/alerts/vip-probe.js';
import type { CheckId, CheckResult, CheckStatus } from '../../src/domain/check-result.js';
import type { VipState } from '../../src/domain/classify.js';
import type { StatusReport } from '../../src/domain/report.js';

function check(id: CheckId, status: CheckStatus, summary: string): CheckResult {
  return {
    id,
    check: id,
    title: id,
    node: undefined,
    status,
    summary,
    facts: undefined,
    evidence: undefined,
    errorCode: undefined,
    durationMs: 1,
  };
}

function report(state: VipState, checks: CheckResult[]): StatusReport {
  return {
    schemaVersion: 1,
    kind: 'check',
    startedAt: '2024-05-01T03:12:07.000Z',
    durationMs: 5,
    vip: { address: '10.86.0.18', state },
    healthy: true,
    diagnosable: true,
    counts: { ok: 0, warn: 0, fail: 0, unreachable: 0, timeout: 0, unknown: 0 },
    incidents: [],
    checks,
  };
}

describe('vipProbeFromDiagnostics', () => {
  it('runs the vip-owner and vip-http scopes and maps them to an observation', async () => {
    const scopes: string[] = [];
    const probe = vipProbeFromDiagnostics({
      run: async (scope) => {
        scopes.push(scope.target);
        return scope.target === 'vip-owner'
          ? report({ kind: 'single', holder: 'pi-b' }, [check('vip-owner', 'ok', 'pi-b holds 10.86.0.18')])
          : report({ kind: 'unknown', reason: 'not checked' }, [
              check('vip-http', 'fail', 'connection refused'),
            ]);
      },
    });
    expect(await probe()).toEqual({
      state: { kind: 'single', holder: 'pi-b' },
      httpOk: false,
      detail: 'pi-b holds 10.86.0.18; HTTP: connection refused',
      unseen: [],
    });
    expect(scopes.sort()).toEqual(['vip-http', 'vip-owner']);
  });

  it('counts a warning (slow) VIP answer as answering, and a missing check as not', async () => {
    const warn = vipProbeFromDiagnostics({
      run: async (scope) =>
        report(
          { kind: 'none' },
          scope.target === 'vip-http' ? [check('vip-http', 'warn', 'slow: 1500 ms')] : [],
        ),
    });
    expect(await warn()).toMatchObject({
      state: { kind: 'none' },
      httpOk: true,
      detail: 'HTTP: slow: 1500 ms',
    });
    const missing = vipProbeFromDiagnostics({ run: async () => report({ kind: 'none' }, []) });
    expect(await missing()).toMatchObject({ httpOk: false, detail: '' });
  });

  it('names the nodes whose addresses the look could not read', async () => {
    const owner: CheckResult = {
      ...check('vip-owner', 'ok', 'pi-b holds 10.86.0.18 (cannot see pi-a: ssh timed out)'),
      facts: { kind: 'vip-owner', holders: ['pi-b'], unknown: ['pi-a'] },
    };
    const probe = vipProbeFromDiagnostics({
      run: async (scope) =>
        report({ kind: 'single', holder: 'pi-b' }, scope.target === 'vip-owner' ? [owner] : []),
    });
    expect((await probe()).unseen).toEqual(['pi-a']);
  });
});
