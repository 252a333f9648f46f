import { describe, expect, it } from 'vitest';
import { createPngRenderer } from '../../src/charts/png-renderer.js';
import { buildIncidentCharts } from '../../src/domain/incident-charts.js';
import { isPng, pngSize } from '../support/png.js';

/** The real resvg renderer with the shipped DejaVu font: PNG out, text drawn. */

describe('chart renderer', () => {
  it('renders the charts as PNG at their size, with their text', async () => {
    const render = createPngRenderer();
    const t0 = Date.parse('2026-12-02T03:12:00Z');
    const [chart] = buildIncidentCharts({
      incident: { key: '2:pi-b', number: '2', title: 'Redis down', openedAt: t0, resolvedAt: t0 + 190_000 },
      timeline: [
        {
          at: t0,
          kind: 'diagnosis',
          text: '',
          data: { checks: [{ id: 'redis-ping', status: 'unreachable', summary: '' }] },
        },
      ],
      generatedAt: t0 + 200_000,
    });
    if (chart === undefined) throw new Error('no chart');
    const png = await render(chart.svg);
    expect(isPng(png)).toBe(true);
    expect(pngSize(png)).toEqual({ width: chart.width, height: chart.height });
    // The same chart without its text is smaller: the font was found and the text drawn.
    const blank = await render(chart.svg.replace(/<text[^>]*>[^<]*<\/text>/g, ''));
    expect(png.length).toBeGreaterThan(blank.length + 1000);
  });
});
