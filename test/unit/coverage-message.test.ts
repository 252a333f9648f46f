import { describe, expect, it } from 'vitest';
import { buildCoverage } from '../../src/domain/coverage.js';
import { renderCoverage } from '../../src/slack/render/coverage-message.js';

const T0 = Date.parse('2026-12-02T03:00:00Z');
const at = (min: number) => T0 + min * 60_000;

const sample = buildCoverage({
  incidents: [
    {
      key: '2:pi-b',
      number: '2',
      lastSeenAt: at(10),
      lastFixedAt: at(12),
      lastVerifiedAt: at(12),
      failoverCause: null,
    },
    {
      key: 'failover:pi-a',
      number: '4',
      lastSeenAt: at(20),
      lastFixedAt: null,
      lastVerifiedAt: null,
      failoverCause: 'unreachable',
    },
    {
      key: 'failover:pi-a',
      number: '4',
      lastSeenAt: at(30),
      lastFixedAt: null,
      lastVerifiedAt: null,
      failoverCause: null,
    },
  ],
  drills: [
    { incidentNumber: '2', kind: 'redis', finishedAt: at(40), outcome: 'completed: recovered in 4.1 s' },
  ],
  generatedAt: at(50),
});

describe('/okome coverage (Block Kit)', () => {
  it('one section per runbook incident, never where nothing was (golden)', async () => {
    const message = renderCoverage(sample);
    await expect(JSON.stringify(message, null, 2)).toMatchFileSnapshot('../fixtures/golden/coverage.json');
    const sections = message.blocks.filter((b) => b.type === 'section');
    expect(sections).toHaveLength(8);
    expect(message.blocks.length).toBeLessThanOrEqual(50);
    const text = JSON.stringify(message.blocks);
    expect(text).toContain('*Incident 5b — ');
    expect(text).toContain('_never_ (no drill rehearses it)');
    expect(text).toContain('2026-12-02 03:40 UTC: redis, completed: recovered in 4.1 s');
    expect(message.text).toContain('Never seen: 1, 3, 5, 5b, 6, 7');
  });

  it('stored strings pass the escape boundary', () => {
    const hostile = buildCoverage({
      incidents: [
        {
          key: '6:<!channel>',
          number: '6',
          lastSeenAt: at(1),
          lastFixedAt: null,
          lastVerifiedAt: null,
          failoverCause: null,
        },
        {
          key: 'failover:x',
          number: '4',
          lastSeenAt: at(2),
          lastFixedAt: null,
          lastVerifiedAt: null,
          failoverCause: '<@U123>',
        },
      ],
      drills: [
        {
          incidentNumber: '4',
          kind: 'failover',
          finishedAt: at(3),
          outcome: 'failed: <https://evil|click> & more',
        },
      ],
      generatedAt: at(4),
    });
    const text = JSON.stringify(renderCoverage(hostile));
    expect(text).not.toMatch(/<!channel>|<@U123>|<https:/);
    expect(text).toContain('6:&lt;!channel&gt;');
    expect(text).toContain('&lt;https://evil|click&gt; &amp; more');
    expect(text).toContain('cause: &lt;@U123&gt;');
  });
});
