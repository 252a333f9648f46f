import { describe, expect, it } from 'vitest';
import { buildIncidentCharts, STATUS_COLOURS } from '../../src/domain/incident-charts.js';
import type { ReportTimelineEntry } from '../../src/domain/incident-report.js';

const T0 = Date.parse('2026-12-02T03:12:00Z');
const at = (s: number) => T0 + s * 1000;
const incident = { key: '2:pi-b', number: '2', title: 'Redis down', openedAt: at(0), resolvedAt: at(190) };

const redisTimeline: ReportTimelineEntry[] = [
  {
    at: at(0),
    kind: 'diagnosis',
    text: 'Opened',
    data: {
      checks: [
        { id: 'redis-ping', status: 'unreachable', summary: 'refused' },
        { id: 'service:redis-server@pi-b', status: 'fail', summary: 'inactive' },
      ],
      vip: { kind: 'single', holder: 'pi-a' },
    },
  },
  {
    at: at(127),
    kind: 'outcome',
    text: 'Succeeded',
    data: {
      verification: {
        ok: true,
        attempts: 1,
        checks: [
          { id: 'redis-ping', status: 'ok', summary: 'PONG' },
          { id: 'service:redis-server@pi-b', status: 'ok', summary: 'active' },
        ],
      },
    },
  },
  {
    at: at(190),
    kind: 'resolved',
    text: 'healthy',
    data: { cause: 'healthy-status', checks: [], vip: { kind: 'single', holder: 'pi-a' } },
  },
];

describe('incident charts (SVG)', () => {
  it('incident 2: the VIP held by pi-a throughout, the redis checks red then green', () => {
    const charts = buildIncidentCharts({ incident, timeline: redisTimeline, generatedAt: at(200) });
    expect(charts.map((c) => c.name)).toEqual(['vip-holder', 'check-states']);
    const [vip, checks] = charts;
    expect(vip?.svg).toContain('>pi-a</text>');
    expect(vip?.svg).toContain('VIP holder over incident 2 (2:pi-b)');
    // Two bars on pi-a's lane (diagnosis → resolution, then the resolution's sliver).
    expect(vip?.svg.match(/fill="#2f6fb3"/g)).toHaveLength(2);
    // Rows per node: the node-less check first, then pi-b's.
    const rows = [...(checks?.svg.matchAll(/text-anchor="end" fill="#1d1d1d">([^<]+)</g) ?? [])].map(
      (m) => m[1],
    );
    expect(rows).toEqual(['redis-ping', 'service:redis-server@pi-b']);
    const colours = [...(checks?.svg.matchAll(/rx="3" fill="(#[0-9a-f]{6})"/g) ?? [])].map((m) => m[1]);
    expect(colours).toEqual([
      STATUS_COLOURS.unreachable,
      STATUS_COLOURS.ok,
      STATUS_COLOURS.fail,
      STATUS_COLOURS.ok,
    ]);
    expect(checks?.height).toBe(56 + 2 * 28 + 44 + 24);
    expect(checks?.svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="900"/);
  });

  it('a failover: the holder moves to pi-b and back, said by the notices', () => {
    const charts = buildIncidentCharts({
      incident: { ...incident, key: 'failover:pi-a', number: '3' },
      timeline: [
        {
          at: at(5),
          kind: 'notice',
          text: 'VIP moved from pi-a to pi-b (hook)',
          data: { from: 'pi-a', to: 'pi-b' },
        },
        { at: at(80), kind: 'notice', text: 'VIP back on pi-a', data: null },
      ],
      generatedAt: at(200),
    });
    expect(charts.map((c) => c.name)).toEqual(['vip-holder']);
    const svg = charts[0]?.svg ?? '';
    expect(svg).toContain('>pi-a</text>');
    expect(svg).toContain('>pi-b</text>');
    expect(svg.match(/rx="3"/g)).toHaveLength(3); // pi-a before, pi-b, pi-a again
  });

  it('no samples, no chart; outside text is escaped', () => {
    expect(buildIncidentCharts({ incident, timeline: [], generatedAt: at(1) })).toEqual([]);
    const [chart] = buildIncidentCharts({
      incident: { ...incident, key: 'alert:<x>&"' },
      timeline: [
        { at: at(1), kind: 'diagnosis', text: '', data: { checks: [{ id: 'a<b', status: 'fail' }] } },
      ],
      generatedAt: at(2),
    });
    expect(chart?.svg).toContain('alert:&lt;x&gt;&amp;&quot;');
    expect(chart?.svg).toContain('>a&lt;b</text>');
  });

  it('incident 6: the Redis hit ratio of each diagnosis, verification and healing status, as a line', () => {
    const sample = (ratio: number) => ({
      ratio,
      hits: ratio * 1000,
      misses: (1 - ratio) * 1000,
      source: 'window',
    });
    const charts = buildIncidentCharts({
      incident: { ...incident, key: '6:pi-b', number: '6' },
      timeline: [
        { at: at(0), kind: 'diagnosis', text: 'Opened', data: { checks: [], hitRatio: sample(0.12) } },
        { at: at(60), kind: 'diagnosis', text: 'Seen again', data: { checks: [], hitRatio: sample(0.2) } },
        // A probe tick's or a note's ratio is no judgement: left out.
        { at: at(70), kind: 'note', text: 'x', data: { hitRatio: sample(0.99) } },
        {
          at: at(127),
          kind: 'outcome',
          text: 'Succeeded',
          data: { verification: { ok: true, attempts: 1, checks: [] }, hitRatio: sample(0.5) },
        },
        {
          at: at(190),
          kind: 'resolved',
          text: 'healthy',
          data: { cause: 'healthy-status', hitRatio: sample(0.9) },
        },
        // Malformed: no chart point, no failure.
        { at: at(191), kind: 'diagnosis', text: 'odd', data: { hitRatio: { ratio: 7 } } },
      ],
      generatedAt: at(200),
    });
    expect(charts.map((c) => c.name)).toEqual(['redis-hit-ratio']);
    const svg = charts[0]?.svg ?? '';
    expect(svg).toContain('Redis hit ratio over incident 6 (6:pi-b)');
    const labels = [...svg.matchAll(/text-anchor="middle" fill="#1d1d1d">(\d+) %</g)].map((m) => m[1]);
    expect(labels).toEqual(['12', '20', '50', '90']);
    const ys = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    // 0 % at the bottom of the 200 px plot (y = 256), 100 % at its top (y = 56).
    expect(ys).toEqual(
      [56 + 0.88 * 200, 56 + 0.8 * 200, 56 + 0.5 * 200, 56 + 0.1 * 200].map((v) => Number(v.toFixed(1))),
    );
    expect(svg).toContain('<polyline');
    for (const word of ['diagnosis', 'verification', 'healing status'])
      expect(svg).toContain(`>${word}</text>`);
    expect(charts[0]?.height).toBe(56 + 200 + 44 + 24);
  });
});
