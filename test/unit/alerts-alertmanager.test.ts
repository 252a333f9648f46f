import { describe, expect, it } from 'vitest';
import { alertDedupeKey, jsonPath, parseAlertmanager } from '../../src/alerts/alertmanager.js';

/** As Alertmanager 0.27 sends it (notification_reason is newer; tolerated). */
function payload(): Record<string, unknown> {
  return {
    receiver: 'okome-bot',
    status: 'firing',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'RedisDown', instance: 'pi-b:9121', job: 'redis', severity: 'page' },
        annotations: { summary: 'Redis on pi-b does not answer' },
        startsAt: '2024-05-01T03:12:07.123456789Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=redis_up+%3D%3D+0',
        fingerprint: 'c6b8f6a1e1f2b3d4',
      },
    ],
    groupLabels: { alertname: 'RedisDown' },
    commonLabels: { alertname: 'RedisDown', instance: 'pi-b:9121', job: 'redis', severity: 'page' },
    commonAnnotations: { summary: 'Redis on pi-b does not answer' },
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: '{}:{alertname="RedisDown"}',
    truncatedAlerts: 0,
    notification_reason: 'new alert',
  };
}

describe('parseAlertmanager', () => {
  it('accepts a real v4 payload and keeps unknown keys', () => {
    const result = parseAlertmanager(payload());
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.batch.alerts[0]?.labels.alertname).toBe('RedisDown');
    expect(result.batch.groupKey).toBe('{}:{alertname="RedisDown"}');
    expect((result.batch as Record<string, unknown>).notification_reason).toBe('new alert');
  });

  it('accepts timestamps with offsets and resolved alerts; defaults optional maps', () => {
    const p = payload();
    p.status = 'resolved';
    p.alerts = [
      {
        status: 'resolved',
        labels: { alertname: 'RedisDown' },
        startsAt: '2024-05-01T12:12:07+09:00',
        endsAt: '2024-05-01T12:20:00.5+09:00',
        fingerprint: 'f',
      },
    ];
    delete p.commonAnnotations;
    delete p.truncatedAlerts;
    const result = parseAlertmanager(p);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.batch.commonAnnotations).toEqual({});
    expect(result.batch.truncatedAlerts).toBe(0);
    expect(result.batch.alerts[0]?.annotations).toEqual({});
  });

  it('names the JSON path of each problem', () => {
    const p = payload();
    p.version = '3';
    p.alerts = [
      { ...(payload().alerts as object[])[0], labels: { alertname: 7, 'a-b': null }, startsAt: 'yesterday' },
    ];
    p.commonLabels = [];
    const result = parseAlertmanager(p);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual(
      expect.arrayContaining([
        'version: must be "4" (Alertmanager webhook payload version 4)',
        'alerts[0].labels.alertname: must be a string',
        'alerts[0].labels["a-b"]: must be a string',
        'alerts[0].startsAt: must be an RFC 3339 timestamp',
        expect.stringMatching(/^commonLabels: /),
      ]),
    );
  });

  it('refuses non-objects and missing fields, with a readable root path', () => {
    for (const bad of [null, 42, 'x', [], {}]) {
      const result = parseAlertmanager(bad);
      expect(result.ok).toBe(false);
    }
    const root = parseAlertmanager(null);
    expect(!root.ok && root.problems[0]).toMatch(/^\(body\): /);
  });

  it('caps the problem list', () => {
    const p = payload();
    p.alerts = Array.from({ length: 100 }, () => ({ status: 'nope' }));
    const result = parseAlertmanager(p);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(21);
    expect(result.problems[20]).toMatch(/^… and \d+ more problem\(s\)$/);
  });
});

describe('alertDedupeKey', () => {
  const alert = { fingerprint: 'abc', status: 'firing' as const, startsAt: '2024-05-01T03:12:07Z' };

  it('is stable and fixed-length', () => {
    expect(alertDedupeKey('g', alert)).toBe(alertDedupeKey('g', { ...alert }));
    expect(alertDedupeKey('g'.repeat(10_000), alert)).toMatch(/^am:[0-9a-f]{64}$/);
  });

  it('differs on each component, without concatenation ambiguity', () => {
    const base = alertDedupeKey('g', alert);
    expect(alertDedupeKey('h', alert)).not.toBe(base);
    expect(alertDedupeKey('g', { ...alert, fingerprint: 'abd' })).not.toBe(base);
    expect(alertDedupeKey('g', { ...alert, status: 'resolved' })).not.toBe(base);
    expect(alertDedupeKey('g', { ...alert, startsAt: '2024-05-01T03:12:08Z' })).not.toBe(base);
    expect(alertDedupeKey('a|b', { ...alert, fingerprint: 'c' })).not.toBe(
      alertDedupeKey('a', { ...alert, fingerprint: 'b|c' }),
    );
  });
});

describe('jsonPath', () => {
  it('writes dotted names, indexes and quoted odd keys', () => {
    expect(jsonPath(['alerts', 0, 'labels', 'x y'])).toBe('alerts[0].labels["x y"]');
    expect(jsonPath([])).toBe('(body)');
  });
});
