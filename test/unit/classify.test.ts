import { describe, expect, it } from 'vitest';
import type { CheckId, CheckResult, CheckStatus, Facts } from '../../src/domain/check-result.js';
import { resultId } from '../../src/domain/check-result.js';
import { type ClassifyContext, classify } from '../../src/domain/classify.js';
import { twoPiContext } from '../support/two-pi-context.js';

const ctx: ClassifyContext = twoPiContext([
  { id: 'restart-nginx', targets: { roles: ['frontend', 'spare'] } },
  { id: 'restart-redis', targets: { roles: ['backend'] } },
  { id: 'restart-keepalived', targets: { nodes: ['pi-a', 'pi-b'] } },
  { id: 'flush-redis', targets: { roles: ['backend'] } },
  { id: 'disable-chaos', targets: { roles: ['frontend', 'backend'] } },
]);

function r(check: CheckId, status: CheckStatus, facts?: Facts, node?: string, service?: string): CheckResult {
  return {
    id: resultId(check, node, service),
    check,
    title: check,
    node,
    status,
    summary: `${check} ${status}`,
    facts,
    evidence: undefined,
    errorCode: undefined,
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

/** A healthy report; each override replaces the result with the same id. */
function report(...overrides: CheckResult[]): CheckResult[] {
  const base: CheckResult[] = [
    r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-a'], unknown: [] }),
    r('vip-http', 'ok', http(200, 'HIT')),
    r('vip-api', 'ok', http(200)),
    r('orch-health', 'ok', http(200)),
    r('redis-ping', 'ok', { kind: 'redis-ping', reply: 'PONG' }),
    r('redis-hit-ratio', 'ok', { kind: 'hit-ratio', ratio: 0.9, hits: 90, misses: 10, source: 'window' }),
    r('redis-budget', 'ok', {
      kind: 'redis-budget',
      budgetKeys: 3,
      rateLimitKeys: 2,
      limit: 60,
      runaway: [],
    }),
  ];
  for (const n of ctx.nodes) {
    base.push(
      r('ssh', 'ok', { kind: 'ssh', reachable: true }, n.name),
      r('node-http', 'ok', http(200, 'HIT'), n.name),
      r('vip-addr', 'ok', { kind: 'vip-addr', holds: n.name === 'pi-a' }, n.name),
      r('chaos-flag', 'ok', { kind: 'chaos-flag', present: false }, n.name),
      r('firewall', 'ok', { kind: 'firewall', unexpected: [] }, n.name),
      r('streaming', 'ok', { kind: 'streaming', missing: [] }, n.name),
      ...n.services.map((s) =>
        r('service', 'ok', { kind: 'service', service: s, state: 'active' }, n.name, s),
      ),
    );
  }
  const byId = new Map(base.map((x) => [x.id, x]));
  for (const o of overrides) byId.set(o.id, o);
  return [...byId.values()];
}

const svc = (node: string, service: string, state: string) =>
  r('service', state === 'active' ? 'ok' : 'fail', { kind: 'service', service, state }, node, service);

describe('classify', () => {
  it('a healthy report has no incident and states the VIP holder', () => {
    const c = classify(report(), ctx);
    expect(c.incidents).toEqual([]);
    expect(c.vip).toEqual({ kind: 'single', holder: 'pi-a' });
  });

  const table: ReadonlyArray<{
    name: string;
    results: CheckResult[];
    incidents: string[];
    actions: Record<string, string[]>;
  }> = [
    {
      name: 'incident 1: nginx stopped on the VIP holder, VIP refused',
      results: [svc('pi-a', 'nginx', 'inactive'), r('vip-http', 'unreachable')],
      incidents: ['1:pi-a'],
      actions: { '1:pi-a': ['restart-nginx@pi-a'] },
    },
    {
      name: 'incident 2: redis does not answer PING',
      results: [r('redis-ping', 'unreachable'), svc('pi-b', 'redis-server', 'inactive')],
      incidents: ['2:pi-b'],
      actions: { '2:pi-b': ['restart-redis@pi-b'] },
    },
    {
      name: 'incident 3: no node holds the VIP',
      results: [
        r('vip-owner', 'fail', { kind: 'vip-owner', holders: [], unknown: [] }),
        r('vip-http', 'unreachable'),
        svc('pi-a', 'keepalived', 'inactive'),
        svc('pi-b', 'keepalived', 'inactive'),
      ],
      incidents: ['3:pi-a,pi-b'],
      actions: { '3:pi-a,pi-b': ['restart-keepalived@pi-a,pi-b'] },
    },
    {
      name: 'split brain is incident 3, named as such',
      results: [r('vip-owner', 'fail', { kind: 'vip-owner', holders: ['pi-a', 'pi-b'], unknown: [] })],
      incidents: ['3:pi-a,pi-b'],
      actions: { '3:pi-a,pi-b': ['restart-keepalived@pi-a,pi-b'] },
    },
    {
      name: 'incident 4: frontend dead, VIP on the spare: no action',
      results: [
        r('ssh', 'unreachable', undefined, 'pi-a'),
        r('node-http', 'unreachable', undefined, 'pi-a'),
        r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-b'], unknown: ['pi-a'] }),
      ],
      incidents: ['4:pi-a'],
      actions: { '4:pi-a': [] },
    },
    {
      name: 'incident 5: orchestrator down, UI served from cache: no cache action',
      results: [
        r('orch-health', 'unreachable'),
        r('vip-api', 'fail', http(502)),
        r('vip-http', 'ok', http(200, 'STALE')),
      ],
      incidents: ['5'],
      actions: { '5': [] },
    },
    {
      name: 'incident 5 from /api 503 through the VIP with the UI still cached',
      results: [r('vip-api', 'fail', http(503)), r('vip-http', 'ok', http(200, 'UPDATING'))],
      incidents: ['5'],
      actions: { '5': [] },
    },
    {
      name: 'incident 5b: orchestrator healthy, streaming directives missing',
      results: [
        r(
          'streaming',
          'fail',
          { kind: 'streaming', missing: [{ location: '/api/', directives: ['proxy_buffering off'] }] },
          'pi-a',
        ),
      ],
      incidents: ['5b:pi-a'],
      actions: { '5b:pi-a': [] },
    },
    {
      name: 'incident 6: ratio collapsed and runaway rate-limit counters',
      results: [
        r('redis-hit-ratio', 'fail', {
          kind: 'hit-ratio',
          ratio: 0.05,
          hits: 5,
          misses: 95,
          source: 'window',
        }),
        r('redis-budget', 'warn', {
          kind: 'redis-budget',
          budgetKeys: 9,
          rateLimitKeys: 3,
          limit: 60,
          runaway: [{ agent: 'planner-2', count: 75 }],
        }),
      ],
      incidents: ['6:pi-b'],
      actions: { '6:pi-b': ['flush-redis@pi-b'] },
    },
    {
      name: 'a low ratio without runaway agents is not incident 6',
      results: [
        r('redis-hit-ratio', 'warn', { kind: 'hit-ratio', ratio: 0.1, hits: 1, misses: 9, source: 'window' }),
      ],
      incidents: [],
      actions: {},
    },
    {
      name: 'incident 7: chaos flag and an iptables rule; the stopped nginx is part of it',
      results: [
        r('chaos-flag', 'fail', { kind: 'chaos-flag', present: true }, 'pi-a'),
        r(
          'firewall',
          'fail',
          { kind: 'firewall', unexpected: ['-A INPUT -p tcp --dport 80 -j DROP'] },
          'pi-a',
        ),
        svc('pi-a', 'nginx', 'inactive'),
      ],
      incidents: ['7:pi-a', '1:pi-a'],
      actions: { '7:pi-a': ['disable-chaos@pi-a'], '1:pi-a': [] },
    },
    {
      name: 'two faults: orchestrator down and nginx stopped: incident 5 leads, no cache action',
      results: [
        r('orch-health', 'unreachable'),
        svc('pi-a', 'nginx', 'inactive'),
        r('vip-http', 'unreachable'),
      ],
      incidents: ['5', '1:pi-a'],
      actions: { '5': [], '1:pi-a': [] },
    },
  ];

  it.each(table)('$name', ({ results, incidents, actions }) => {
    const c = classify(report(...results), ctx);
    expect(c.incidents.map((i) => i.key)).toEqual(incidents);
    for (const incident of c.incidents) {
      expect(incident.actions.map((a) => `${a.actionId}@${a.nodes.join(',')}`)).toEqual(
        actions[incident.key],
      );
      expect(incident.evidence.length).toBeGreaterThan(0);
      for (const id of incident.evidence)
        expect(results.concat(report()).some((x) => x.id === id)).toBe(true);
    }
  });

  it('holds cache actions back under golden rule 1 and says why', () => {
    const c = classify(report(r('orch-health', 'unreachable'), svc('pi-a', 'nginx', 'inactive')), ctx);
    const one = c.incidents.find((i) => i.number === '1');
    expect(one?.held?.actions.map((a) => a.actionId)).toEqual(['restart-nginx']);
    expect(one?.held?.reason).toMatch(/Golden rule 1/);
  });

  it('advises reflash for a dead frontend and names the spare', () => {
    const c = classify(
      report(
        r('ssh', 'unreachable', undefined, 'pi-a'),
        r('node-http', 'timeout', undefined, 'pi-a'),
        r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-b'], unknown: ['pi-a'] }),
      ),
      ctx,
    );
    expect(c.vip).toEqual({ kind: 'single', holder: 'pi-b' });
    const four = c.incidents.find((i) => i.number === '4');
    expect(four?.advice.join(' ')).toMatch(/Nothing immediately: pi-b holds the VIP/);
    expect(four?.advice.join(' ')).toMatch(/Reflash pi-a/);
  });

  it('keepalived stopped on the old holder while the spare holds the VIP: restart-keepalived there only', () => {
    const c = classify(
      report(
        svc('pi-a', 'keepalived', 'inactive'),
        r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-b'], unknown: [] }),
      ),
      ctx,
    );
    const three = c.incidents.filter((i) => i.number === '3');
    expect(three.map((i) => [i.key, i.summary, i.actions])).toEqual([
      [
        '3:pi-a',
        'keepalived is inactive on pi-a: pi-b holds the VIP; pi-a cannot take it back',
        [{ actionId: 'restart-keepalived', nodes: ['pi-a'] }],
      ],
    ]);
  });

  it('a Pi that answers with resets is up: its daemons are down, no reflash advice', () => {
    const c = classify(
      report(
        r('ssh', 'unreachable', { kind: 'ssh', reachable: false, refused: true }, 'pi-a'),
        r('node-http', 'unreachable', { kind: 'transport', refused: true }, 'pi-a'),
        r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-b'], unknown: ['pi-a'] }),
      ),
      ctx,
    );
    const four = c.incidents.find((i) => i.number === '4');
    expect(four?.title).toBe('Frontend Pi refuses connections');
    expect(four?.summary).toBe(
      'pi-a is up but refuses SSH and HTTP: its daemons are down; the VIP is on pi-b',
    );
    expect(four?.actions).toEqual([]);
    expect(JSON.stringify(c)).not.toMatch(/reflash/i);
  });

  it('a host-key mismatch is not a dead Pi', () => {
    const mismatch = { ...r('ssh', 'fail', undefined, 'pi-a'), errorCode: 'OKOME_SSH_HOST_KEY_MISMATCH' };
    const c = classify(report(mismatch, r('node-http', 'unreachable', undefined, 'pi-a')), ctx);
    expect(c.incidents.some((i) => i.number === '4')).toBe(false);
  });

  it('proposes an action only on nodes its catalogue entry allows', () => {
    const narrow: ClassifyContext = {
      ...ctx,
      actions: [{ id: 'restart-nginx', targets: { roles: ['frontend'] } }],
    };
    const c = classify(report(svc('pi-b', 'nginx', 'failed')), narrow);
    expect(c.incidents.map((i) => i.key)).toEqual(['1:pi-b']);
    expect(c.incidents[0]?.actions).toEqual([]);
  });
});

/** What a bot that reaches nothing sees: no check answered; the VIP holder is unknown. */
function nothingAnswers(...overrides: CheckResult[]): CheckResult[] {
  const byId = new Map(
    report().map((x): [string, CheckResult] => [
      x.id,
      x.check === 'vip-owner'
        ? r('vip-owner', 'unknown', { kind: 'vip-owner', holders: [], unknown: ['pi-a', 'pi-b'] })
        : { ...r(x.check, 'unreachable', undefined, x.node), id: x.id },
    ]),
  );
  for (const o of overrides) byId.set(o.id, o);
  return [...byId.values()];
}

describe('isolation is judged first', () => {
  it('nothing answers: isolation, no incident, no Pi declared dead', () => {
    const c = classify(nothingAnswers(), ctx);
    expect(c.isolation?.summary).toBe(
      "cannot reach the cache layer from here: check the bot's network and config",
    );
    expect(c.isolation?.evidence).toEqual([
      'orch-health',
      'vip-http',
      'ssh@pi-a',
      'node-http@pi-a',
      'ssh@pi-b',
      'node-http@pi-b',
    ]);
    expect(c.incidents).toEqual([]);
    expect(JSON.stringify(c)).not.toMatch(/Reflash/);
  });

  it('timeouts count as no answer too (a cut link drops packets instead of refusing them)', () => {
    const timedOut = nothingAnswers().map((x) =>
      x.status === 'unreachable' ? { ...x, status: 'timeout' as const } : x,
    );
    const c = classify(timedOut, ctx);
    expect(c.isolation).toBeDefined();
    expect(c.incidents).toEqual([]);
  });

  it('a scope without the orchestrator (validate) is still isolation, and says the orchestrator was not checked', () => {
    const c = classify(
      nothingAnswers().filter((x) => x.id !== 'orch-health' && x.id !== 'vip-api'),
      ctx,
    );
    expect(c.isolation?.detail).not.toMatch(/orchestrator/);
    expect(c.isolation?.advice.join(' ')).toMatch(
      /orchestrator was not checked, so both Pis being down cannot be ruled out/,
    );
    expect(c.incidents).toEqual([]);
  });

  it('orchestrator up, both Pis unreachable: one incident "Both Pis unreachable", no cache action', () => {
    const c = classify(nothingAnswers(r('orch-health', 'ok', http(200))), ctx);
    expect(c.isolation).toBeUndefined();
    expect(c.incidents.map((i) => i.key)).toEqual(['4:pi-a,pi-b']);
    const four = c.incidents[0];
    expect(four?.title).toBe('Both Pis unreachable');
    expect(four?.actions).toEqual([]);
    expect(four?.held).toBeUndefined();
    expect(four?.advice[0]).toMatch(/^No cache action possible/);
    expect(four?.advice.join(' ')).toMatch(/power, the switch, the cabling/);
    expect(four?.summary).toMatch(/the orchestrator answers/);
  });

  it('orchestrator down (503) and both Pis unreachable: incident 5 leads, then both Pis', () => {
    const c = classify(nothingAnswers(r('orch-health', 'fail', http(503))), ctx);
    expect(c.isolation).toBeUndefined();
    expect(c.incidents.map((i) => i.key)).toEqual(['5', '4:pi-a,pi-b']);
    expect(c.incidents.flatMap((i) => [...i.actions, ...(i.held?.actions ?? [])])).toEqual([]);
  });

  it('Redis answering PING proves a way in: not isolation', () => {
    const c = classify(nothingAnswers(r('redis-ping', 'ok', { kind: 'redis-ping', reply: 'PONG' })), ctx);
    expect(c.isolation).toBeUndefined();
    expect(c.incidents.map((i) => i.key)).toEqual(['5', '4:pi-a,pi-b']);
  });

  it("one node's checks cannot say nothing answers: pi-a alone is incident 4 as before", () => {
    const c = classify(
      nothingAnswers().filter((x) => x.node === 'pi-a'),
      ctx,
    );
    expect(c.isolation).toBeUndefined();
    expect(c.incidents.map((i) => i.key)).toEqual(['4:pi-a']);
  });

  it('only pi-a unreachable, VIP on pi-b: incident 4 for pi-a with reflash advice, not isolation', () => {
    const c = classify(
      report(
        r('ssh', 'unreachable', undefined, 'pi-a'),
        r('node-http', 'unreachable', undefined, 'pi-a'),
        r('vip-owner', 'ok', { kind: 'vip-owner', holders: ['pi-b'], unknown: ['pi-a'] }),
      ),
      ctx,
    );
    expect(c.isolation).toBeUndefined();
    expect(c.incidents.map((i) => i.key)).toEqual(['4:pi-a']);
    expect(c.incidents[0]?.title).toBe('Frontend Pi is dead (power, SD, kernel panic)');
    expect(c.incidents[0]?.advice.join(' ')).toMatch(/Reflash pi-a/);
  });
});
