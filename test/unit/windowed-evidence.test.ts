import { describe, expect, it } from 'vitest';
import { EvidenceHistoryLog } from '../../src/diagnostics/evidence-history.js';
import type { CheckResult, CheckStatus, Facts } from '../../src/domain/check-result.js';
import type { Incident } from '../../src/domain/classify.js';
import {
  budgetRecovery,
  incidentRecovery,
  nginxHitRatioRecovery,
  type RecoveryPolicy,
  redisHitRatioRecovery,
  restsOnWindows,
  windowedSymptoms,
} from '../../src/domain/windowed-evidence.js';

const policy: RecoveryPolicy = {
  recoveryMs: 300_000,
  redisHitRatio: 0.5,
  nginxHitRatio: 0.3,
  minLookups: 20,
};
/** 40 s into a rate-limit minute: the minute rolls over 20 s after the diagnosis. */
const T0 = Date.parse('2026-01-24T22:00:40.000Z');

/** An injected clock and a history log reading it, as the diagnostics keep one. */
function world() {
  let t = T0;
  const log = new EvidenceHistoryLog({ keepMs: 3_600_000, now: () => t });
  let hits = 1_000;
  let misses = 9_000;
  return {
    log,
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    /** Redis INFO counters after `h` hits and `m` misses since the previous sample. */
    lookups(h: number, m: number) {
      hits += h;
      misses += m;
      log.addCounters({ at: t, hits, misses });
    },
    restartRedis() {
      hits = 0;
      misses = 0;
    },
    budget(atLimit: { agent: string; count: number }[] = []) {
      log.addBudget({ at: t, window: Math.floor(t / 60_000), atLimit, limit: 60 });
    },
    /** Judged now, for an incident last seen at T0. */
    input(since = T0) {
      return { history: log.snapshot(), now: t, since, policy };
    },
  };
}

function check(id: string, check: CheckResult['check'], status: CheckStatus, facts?: Facts): CheckResult {
  return {
    id,
    check,
    title: id,
    node: id.includes('@') ? id.split('@')[1] : undefined,
    status,
    summary: `${id} ${status}`,
    facts,
    evidence: undefined,
    errorCode: undefined,
    durationMs: 1,
  };
}

const seen6 = [
  check('redis-hit-ratio', 'redis-hit-ratio', 'warn'),
  check('redis-budget', 'redis-budget', 'warn'),
  check('redis-ping', 'redis-ping', 'ok'),
];
const incident6: Incident = {
  number: '6',
  key: '6:pi-b',
  title: 'Cache miss storm / GPU overload',
  nodes: ['pi-b'],
  evidence: ['redis-hit-ratio', 'redis-budget'],
  summary: 'Redis hit ratio 5 % (window) below 50 %; runaway agents: planner-2 (75/60)',
  actions: [{ actionId: 'flush-redis', nodes: ['pi-b'] }],
  held: undefined,
  advice: [],
  followUps: [],
};

/** A minute of the miss storm with its runaway, sampled every 10 s from T0. */
function stormAtDiagnosis(w: ReturnType<typeof world>): void {
  w.lookups(5, 95);
  w.budget([{ agent: 'planner-2', count: 75 }]);
}

describe('windowed evidence: what an incident rests on', () => {
  it('incident 6 rests on windows alone; incident 1 with nginx stopped does not', () => {
    expect(restsOnWindows(incident6, seen6)).toBe(true);
    expect(windowedSymptoms(incident6, seen6).map((c) => c.id)).toEqual(['redis-hit-ratio', 'redis-budget']);
    const nginx1: Incident = {
      ...incident6,
      number: '1',
      key: '1:pi-a',
      evidence: ['service:nginx@pi-a', 'vip-http'],
    };
    const seen1 = [check('service:nginx@pi-a', 'service', 'fail'), check('vip-http', 'vip-http', 'fail')];
    expect(restsOnWindows(nginx1, seen1)).toBe(false);
    expect(windowedSymptoms(nginx1, seen1)).toEqual([]);
  });
});

describe('windowed evidence: incident 6 recovers only on windowed evidence', () => {
  it('the runaway gone for one minute but the hit ratio still low: not recovered', () => {
    const w = world();
    stormAtDiagnosis(w);
    for (let i = 0; i < 6; i++) {
      w.advance(10_000);
      w.lookups(10, 190); // still missing: 5 %
      w.budget(); // the minute rolled over at T0 + 20 s: no counter at its limit since
    }
    expect(budgetRecovery(w.input())).toEqual({
      recovered: false,
      detail: 'the agent budgets seen for only 60 s since the incident was last seen (recovery needs 300 s)',
    });
    // Even a whole quiet span of budgets leaves the low ratio in charge.
    for (let i = 0; i < 30; i++) {
      w.advance(10_000);
      w.lookups(10, 190);
      w.budget();
    }
    expect(budgetRecovery(w.input()).recovered).toBe(true);
    const judged = incidentRecovery(incident6, seen6, w.input());
    expect(judged.recovered).toBe(false);
    expect(judged.details[0]).toBe('Redis hit ratio still 5 % over the last 300 s (below 50 %)');
  });

  it('an idle cache (no lookups) after a quiet minute is not a recovery', () => {
    const w = world();
    stormAtDiagnosis(w);
    for (let i = 0; i < 31; i++) {
      w.advance(10_000);
      w.lookups(0, 0);
      w.budget();
    }
    const judged = incidentRecovery(incident6, seen6, w.input());
    expect(judged).toEqual({
      recovered: false,
      details: [
        'Redis hit ratio: only 0 lookup(s) in the last 300 s: too little traffic to call it recovered',
        'no budget counter at its limit in 5 window(s) over 300 s',
      ],
    });
  });

  it('healthy for less than the span: not yet; for the whole span: recovered', () => {
    const w = world();
    stormAtDiagnosis(w);
    for (let i = 0; i < 29; i++) {
      w.advance(10_000);
      w.lookups(190, 10);
      w.budget();
    }
    expect(redisHitRatioRecovery(w.input())).toEqual({
      recovered: false,
      detail: 'Redis hit ratio seen for only 290 s since the incident was last seen (recovery needs 300 s)',
    });
    w.advance(10_000);
    w.lookups(190, 10);
    w.budget();
    expect(incidentRecovery(incident6, seen6, w.input())).toEqual({
      recovered: true,
      details: [
        'Redis hit ratio 95 % over the last 300 s (6000 lookups)',
        'no budget counter at its limit in 6 window(s) over 300 s',
      ],
    });
  });

  it('a budget counter back at its limit inside the span: not recovered', () => {
    const w = world();
    stormAtDiagnosis(w);
    for (let i = 0; i < 31; i++) {
      w.advance(10_000);
      w.lookups(190, 10);
      w.budget(i === 25 ? [{ agent: 'planner-1', count: 60 }] : []);
    }
    expect(budgetRecovery(w.input())).toEqual({
      recovered: false,
      detail: 'a budget counter was at its limit 50 s before the latest sample (planner-1 60/60)',
    });
    expect(incidentRecovery(incident6, seen6, w.input()).recovered).toBe(false);
  });

  it('samples from before the diagnosis do not anchor a recovery', () => {
    const w = world();
    for (let i = 0; i < 40; i++) {
      w.lookups(190, 10);
      w.budget();
      w.advance(10_000);
    }
    // The incident was seen just now: the healthy history before it says nothing.
    expect(redisHitRatioRecovery(w.input(w.now() - 1)).recovered).toBe(false);
  });

  it('a Redis restart resets the counters: the span counts from zero, never negative', () => {
    const w = world();
    stormAtDiagnosis(w);
    for (let i = 0; i < 30; i++) {
      w.advance(10_000);
      if (i === 10) w.restartRedis();
      w.lookups(190, 10);
    }
    expect(redisHitRatioRecovery(w.input())).toEqual({
      recovered: true,
      detail: 'Redis hit ratio 95 % over the last 300 s (6000 lookups)',
    });
  });
});

describe('windowed evidence: nginx log-tail ratio', () => {
  const nginx = (w: ReturnType<typeof world>, ratio: number | null, lookups = 200) =>
    w.log.addNginxRatio({ at: w.now(), node: 'pi-a', ratio, lookups });

  it('healthy on every look over the span: recovered; one low look inside it: not', () => {
    const w = world();
    nginx(w, 0.1);
    for (let i = 0; i < 6; i++) {
      w.advance(60_000);
      nginx(w, i === 3 ? 0.2 : 0.8);
    }
    expect(nginxHitRatioRecovery(w.input(), 'pi-a')).toEqual({
      recovered: false,
      detail: 'nginx hit ratio on pi-a still 20 % in the last 300 s (below 30 %)',
    });
    for (let i = 0; i < 5; i++) {
      w.advance(60_000);
      nginx(w, 0.8);
    }
    expect(nginxHitRatioRecovery(w.input(), 'pi-a')).toEqual({
      recovered: true,
      detail: 'nginx hit ratio on pi-a healthy over the last 300 s',
    });
    expect(nginxHitRatioRecovery(w.input(), 'pi-b').recovered).toBe(false);
  });

  it('too few lines to judge is not healthy', () => {
    const w = world();
    for (let i = 0; i < 7; i++) {
      nginx(w, 1, 3);
      w.advance(60_000);
    }
    expect(nginxHitRatioRecovery(w.input(), 'pi-a').detail).toMatch(/too few lookups to judge/);
  });
});

describe('the history log', () => {
  it('forgets samples older than it keeps, by the injected clock', () => {
    let t = T0;
    const log = new EvidenceHistoryLog({ keepMs: 60_000, now: () => t });
    log.addCounters({ at: t, hits: 1, misses: 1 });
    t += 30_000;
    log.addCounters({ at: t, hits: 2, misses: 2 });
    t += 45_000;
    log.addCounters({ at: t, hits: 3, misses: 3 });
    expect(log.snapshot().counters.map((c) => c.hits)).toEqual([2, 3]);
  });
});
