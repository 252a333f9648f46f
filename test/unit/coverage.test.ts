import { describe, expect, it } from 'vitest';
import { buildCoverage, countsFor, coverageJson, type IncidentFacts } from '../../src/domain/coverage.js';
import { incidentNumbers } from '../../src/domain/runbook.js';

const T0 = Date.parse('2026-12-02T03:00:00Z');
const at = (min: number) => T0 + min * 60_000;

const facts = (
  key: string,
  number: string,
  seen: number,
  more: Partial<IncidentFacts> = {},
): IncidentFacts => ({
  key,
  number,
  lastSeenAt: at(seen),
  lastFixedAt: null,
  lastVerifiedAt: null,
  failoverCause: null,
  ...more,
});

describe('runbook coverage (pure)', () => {
  it('an empty store: all 8 incidents, each never seen, fixed, verified or drilled', () => {
    const coverage = buildCoverage({ incidents: [], drills: [], generatedAt: at(0) });
    expect(coverage.incidents.map((c) => c.number)).toEqual([...incidentNumbers]);
    for (const c of coverage.incidents) {
      expect(c).toMatchObject({
        seen: 0,
        lastSeen: null,
        lastFixedAt: null,
        lastVerifiedAt: null,
        lastDrill: null,
      });
      expect(c.checks.length).toBeGreaterThan(0);
    }
    expect(coverage.failovers).toEqual({ count: 0, last: null });
  });

  it('detection and fixes come from the runbook and the shipped rules', () => {
    const byNumber = new Map(
      buildCoverage({ incidents: [], drills: [], generatedAt: 0 }).incidents.map((c) => [c.number, c]),
    );
    expect(byNumber.get('2')).toMatchObject({
      checks: ['redis-ping', 'service', 'redis-budget'],
      alertRules: ['RedisDown'],
      actions: ['restart-redis'],
      drillKinds: ['redis'],
    });
    expect(byNumber.get('3')?.alertRules).toEqual(['VipDown', 'KeepalivedNoMaster', 'VipTwoHolders']);
    expect(byNumber.get('4')).toMatchObject({
      alertRules: ['NodeDown'],
      actions: [],
      drillKinds: ['failover'],
    });
    expect(byNumber.get('5b')).toMatchObject({ alertRules: ['StreamingSlow'], actions: [], drillKinds: [] });
    expect(byNumber.get('6')?.actions).toEqual(['flush-redis']);
  });

  it('the newest of each time per number, over every incident with it', () => {
    const coverage = buildCoverage({
      incidents: [
        facts('2:pi-b', '2', 10, { lastFixedAt: at(12), lastVerifiedAt: at(12) }),
        facts('2:pi-b', '2', 40, { lastVerifiedAt: at(45) }),
        facts('2', '2', 30, { lastFixedAt: at(31) }),
        facts('alert:DiskFull', 'alert', 50),
      ],
      drills: [],
      generatedAt: at(60),
    });
    const two = coverage.incidents.find((c) => c.number === '2');
    expect(two).toMatchObject({
      seen: 3,
      lastSeen: { at: at(40), key: '2:pi-b' },
      lastFixedAt: at(31),
      lastVerifiedAt: at(45),
    });
    // An unmapped alert's incident is no runbook incident.
    expect(coverage.incidents.reduce((n, c) => n + c.seen, 0)).toBe(3);
  });

  it("failovers never count by their stored '4': by their explained cause, planned and unexplained-yet ones by none", () => {
    expect(countsFor(facts('failover:pi-a', '4', 1))).toBeUndefined();
    expect(countsFor(facts('failover:pi-a', '4', 1, { failoverCause: 'planned' }))).toBeUndefined();
    expect(countsFor(facts('failover:pi-a', '4', 1, { failoverCause: 'nonsense' }))).toBeUndefined();
    expect(countsFor(facts('failover:pi-a', '4', 1, { failoverCause: 'keepalived-down' }))).toBe('3');
    expect(countsFor(facts('failover:pi-a', '4', 1, { failoverCause: 'nginx-down' }))).toBe('1');
    expect(countsFor(facts('failover:pi-a', '4', 1, { failoverCause: 'unreachable' }))).toBe('4');
    expect(countsFor(facts('4:pi-a', '4', 1))).toBe('4');

    const coverage = buildCoverage({
      incidents: [
        facts('failover:pi-a', '4', 5),
        facts('failover:pi-a', '4', 9, { failoverCause: 'keepalived-down', lastVerifiedAt: at(10) }),
      ],
      drills: [],
      generatedAt: at(20),
    });
    const get = (n: string) => coverage.incidents.find((c) => c.number === n);
    expect(get('4')?.lastSeen).toBeNull();
    expect(get('3')).toMatchObject({
      seen: 1,
      lastSeen: { at: at(9), key: 'failover:pi-a' },
      lastVerifiedAt: at(10),
    });
    expect(coverage.failovers).toEqual({
      count: 2,
      last: { at: at(9), key: 'failover:pi-a', cause: 'keepalived-down' },
    });
  });

  it('the last drill per incident it rehearsed; one naming no runbook incident is ignored', () => {
    const drill = (incidentNumber: string, kind: string, min: number, outcome: string) => ({
      incidentNumber,
      kind,
      finishedAt: at(min),
      outcome,
    });
    const coverage = buildCoverage({
      incidents: [],
      drills: [
        drill('4', 'failover', 3, 'completed'),
        drill('4', 'failover', 7, 'failed'),
        drill('2', 'redis', 5, 'completed'),
        drill('9', 'power-cut', 9, 'completed'),
      ],
      generatedAt: at(10),
    });
    const get = (n: string) => coverage.incidents.find((c) => c.number === n);
    expect(get('4')?.lastDrill).toEqual(drill('4', 'failover', 7, 'failed'));
    expect(get('2')?.lastDrill).toEqual(drill('2', 'redis', 5, 'completed'));
    expect(coverage.incidents.filter((c) => c.lastDrill === null).map((c) => c.number)).toEqual([
      '1',
      '3',
      '5',
      '5b',
      '6',
      '7',
    ]);
  });

  it('as JSON: ISO times, null for never', () => {
    const json = coverageJson(
      buildCoverage({
        incidents: [facts('6:pi-b', '6', 1, { lastFixedAt: at(2) })],
        drills: [],
        generatedAt: at(3),
      }),
    ) as { generatedAt: string; incidents: Record<string, unknown>[] };
    expect(json.generatedAt).toBe('2026-12-02T03:03:00.000Z');
    expect(json.incidents).toHaveLength(8);
    expect(json.incidents.find((c) => c.number === '6')).toMatchObject({
      seen: 1,
      lastSeen: { at: '2026-12-02T03:01:00.000Z', key: '6:pi-b' },
      lastFixed: '2026-12-02T03:02:00.000Z',
      lastVerified: null,
      lastDrill: null,
    });
  });
});
