import { z } from 'zod';
import type { CheckStatus } from './check-result.js';
import { hitRatioSampleSchema } from './hit-ratio-sample.js';
import type { ReportIncident, ReportTimelineEntry } from './incident-report.js';

/**
 * The post-incident report's charts as SVG, from the timeline alone: who held the VIP over the
 * incident, each check's state over it (per node: a check id names its node), and the Redis hit
 * ratio each diagnosis, verification or healing status measured (`data.hitRatio`). Pure; a
 * renderer turns the SVG into PNG. Text is drawn in one family the renderer is given
 * (CHART_FONT_FAMILY), so a slim image with no system fonts still shows it.
 */

export const CHART_FONT_FAMILY = 'DejaVu Sans';

export interface Chart {
  /** File name without extension, e.g. `vip-holder`. */
  readonly name: string;
  readonly title: string;
  readonly svg: string;
  readonly width: number;
  readonly height: number;
}

export interface ChartInput {
  readonly incident: Pick<ReportIncident, 'key' | 'number' | 'title' | 'openedAt' | 'resolvedAt'>;
  readonly timeline: readonly ReportTimelineEntry[];
  readonly generatedAt: number;
}

const checkStatus = z.enum(['ok', 'warn', 'fail', 'unreachable', 'timeout', 'unknown']);
const checksData = z.object({
  checks: z.array(z.object({ id: z.string(), status: checkStatus })),
});
const verificationData = z.object({
  verification: z.object({ checks: z.array(z.object({ id: z.string(), status: checkStatus })) }),
});
const vipData = z.object({
  vip: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('single'), holder: z.string() }),
    z.object({ kind: z.literal('none') }),
    z.object({ kind: z.literal('split'), holders: z.array(z.string()) }),
    z.object({ kind: z.literal('unknown') }).loose(),
  ]),
});
const moveData = z.object({ from: z.string(), to: z.string() });

const WIDTH = 900;
const LEFT = 230;
const RIGHT = 30;
const TOP = 56;
const ROW = 28;
const AXIS = 44;

export const STATUS_COLOURS: Readonly<Record<CheckStatus, string>> = {
  ok: '#2e9e4f',
  warn: '#e0a100',
  fail: '#d1342f',
  unreachable: '#7b3fa0',
  timeout: '#8a6d3b',
  unknown: '#9e9e9e',
};

/** Every chart the timeline has data for (none when it has no samples of that kind). */
export function buildIncidentCharts(input: ChartInput): Chart[] {
  const charts: Chart[] = [];
  const vip = vipChart(input);
  if (vip !== undefined) charts.push(vip);
  const checks = checksChart(input);
  if (checks !== undefined) charts.push(checks);
  const ratio = hitRatioChart(input);
  if (ratio !== undefined) charts.push(ratio);
  return charts;
}

interface Segment {
  readonly lane: string;
  readonly from: number;
  readonly to: number;
  readonly colour: string;
}

function span(input: ChartInput, samples: readonly number[]): { t0: number; t1: number } {
  const t0 = Math.min(input.incident.openedAt, ...samples);
  const end = input.incident.resolvedAt ?? input.generatedAt;
  // A sample at the very end still gets a sliver of width.
  const t1 = Math.max(end, ...samples.map((s) => s + 1000), t0 + 60_000);
  return { t0, t1 };
}

function vipChart(input: ChartInput): Chart | undefined {
  const samples: { at: number; holder: string }[] = [];
  for (const e of input.timeline) {
    const vip = vipData.safeParse(e.data);
    if (vip.success) {
      const v = vip.data.vip;
      samples.push({
        at: e.at,
        holder:
          v.kind === 'single'
            ? v.holder
            : v.kind === 'none'
              ? 'nobody'
              : v.kind === 'split'
                ? `split: ${v.holders.join('+')}`
                : 'unknown',
      });
      continue;
    }
    const move = e.kind === 'notice' ? moveData.safeParse(e.data) : undefined;
    if (move?.success === true) {
      // The old holder up to the move, if nothing said so before.
      if (samples.length === 0) samples.push({ at: input.incident.openedAt, holder: move.data.from });
      samples.push({ at: e.at, holder: move.data.to });
      continue;
    }
    const back = e.kind === 'notice' ? /^VIP back on (\S+)$/.exec(e.text) : null;
    if (back?.[1] !== undefined) samples.push({ at: e.at, holder: back[1] });
  }
  if (samples.length === 0) return undefined;
  samples.sort((a, b) => a.at - b.at);
  const { t0, t1 } = span(
    input,
    samples.map((s) => s.at),
  );
  const lanes = [...new Set(samples.map((s) => s.holder))].sort();
  const segments: Segment[] = samples.map((s, i) => ({
    lane: s.holder,
    from: s.at,
    to: samples[i + 1]?.at ?? t1,
    colour: s.holder === 'nobody' || s.holder.startsWith('split') ? STATUS_COLOURS.fail : '#2f6fb3',
  }));
  return draw(
    'vip-holder',
    `VIP holder over incident ${input.incident.number} (${input.incident.key})`,
    lanes,
    segments,
    { t0, t1 },
    [],
  );
}

function checksChart(input: ChartInput): Chart | undefined {
  const samples: { at: number; checks: { id: string; status: CheckStatus }[] }[] = [];
  for (const e of input.timeline) {
    if (e.kind === 'diagnosis' || e.kind === 'resolved') {
      const parsed = checksData.safeParse(e.data);
      if (parsed.success && parsed.data.checks.length > 0)
        samples.push({ at: e.at, checks: parsed.data.checks });
    } else if (e.kind === 'outcome') {
      const parsed = verificationData.safeParse(e.data);
      if (parsed.success && parsed.data.verification.checks.length > 0)
        samples.push({ at: e.at, checks: parsed.data.verification.checks });
    }
  }
  if (samples.length === 0) return undefined;
  samples.sort((a, b) => a.at - b.at);
  const { t0, t1 } = span(
    input,
    samples.map((s) => s.at),
  );
  // Rows grouped by node (`check@node`), then by check.
  const ids = [...new Set(samples.flatMap((s) => s.checks.map((c) => c.id)))].sort((a, b) => {
    const [ca, na = ''] = a.split('@');
    const [cb, nb = ''] = b.split('@');
    return na.localeCompare(nb) || (ca ?? '').localeCompare(cb ?? '');
  });
  const segments: Segment[] = [];
  for (const id of ids) {
    const seen = samples.flatMap((s) => {
      const c = s.checks.find((x) => x.id === id);
      return c === undefined ? [] : [{ at: s.at, status: c.status }];
    });
    seen.forEach((s, i) => {
      segments.push({ lane: id, from: s.at, to: seen[i + 1]?.at ?? t1, colour: STATUS_COLOURS[s.status] });
    });
  }
  const legend = (Object.keys(STATUS_COLOURS) as CheckStatus[]).map((s) => ({
    label: s,
    colour: STATUS_COLOURS[s],
  }));
  return draw(
    'check-states',
    `Check states over incident ${input.incident.number} (${input.incident.key})`,
    ids,
    segments,
    { t0, t1 },
    legend,
  );
}

const hitRatioData = z.object({ hitRatio: hitRatioSampleSchema });
const RATIO_PLOT = 200;
/** Which judgement measured a sample, as the chart's legend says it. */
const SAMPLE_KINDS: Readonly<Record<string, { label: string; colour: string }>> = {
  diagnosis: { label: 'diagnosis', colour: '#2f6fb3' },
  outcome: { label: 'verification', colour: '#7b3fa0' },
  resolved: { label: 'healing status', colour: STATUS_COLOURS.ok },
};

/** The hit ratio as each judgement measured it: a line through one point per sample, 0–100 %. */
function hitRatioChart(input: ChartInput): Chart | undefined {
  const samples: { at: number; ratio: number; kind: string }[] = [];
  for (const e of input.timeline) {
    if (SAMPLE_KINDS[e.kind] === undefined) continue;
    const parsed = hitRatioData.safeParse(e.data);
    if (parsed.success) samples.push({ at: e.at, ratio: parsed.data.hitRatio.ratio, kind: e.kind });
  }
  if (samples.length === 0) return undefined;
  samples.sort((a, b) => a.at - b.at);
  const { t0, t1 } = span(
    input,
    samples.map((s) => s.at),
  );
  const plot = WIDTH - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * plot;
  const y = (ratio: number) => TOP + (1 - ratio) * RATIO_PLOT;
  const legend = [...new Set(samples.map((s) => s.kind))].flatMap((k) => {
    const kind = SAMPLE_KINDS[k];
    return kind === undefined ? [] : [kind];
  });
  const height = TOP + RATIO_PLOT + AXIS + 24;
  const font = `font-family="${CHART_FONT_FAMILY}"`;
  const parts = [
    header(height, `Redis hit ratio over incident ${input.incident.number} (${input.incident.key})`),
  ];
  for (const level of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${LEFT}" y1="${y(level)}" x2="${LEFT + plot}" y2="${y(level)}" stroke="#dddddd" stroke-width="1"/>`,
      `<text x="${LEFT - 8}" y="${y(level) + 4}" ${font} font-size="11" text-anchor="end" fill="#333">${level * 100} %</text>`,
    );
  }
  const points = samples.map((s) => `${x(s.at).toFixed(1)},${y(s.ratio).toFixed(1)}`);
  if (samples.length > 1)
    parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="#555555" stroke-width="2"/>`);
  samples.forEach((s, i) => {
    const [px, py] = (points[i] ?? '0,0').split(',');
    parts.push(`<circle cx="${px}" cy="${py}" r="5" fill="${SAMPLE_KINDS[s.kind]?.colour ?? '#555555'}"/>`);
    // Few samples (one per judgement): each one's value is worth reading.
    if (samples.length <= 24)
      parts.push(
        `<text x="${px}" y="${Number(py) - 9}" ${font} font-size="11" text-anchor="middle" fill="#1d1d1d">${(s.ratio * 100).toFixed(0)} %</text>`,
      );
  });
  parts.push(...timeAxis(TOP + RATIO_PLOT, { t0, t1 }, legend), '</svg>');
  return {
    name: 'redis-hit-ratio',
    title: `Redis hit ratio over incident ${input.incident.number} (${input.incident.key})`,
    svg: parts.join('\n'),
    width: WIDTH,
    height,
  };
}

/** The chart's opening: the svg element, a white page and the title. */
function header(height: number, title: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="30" font-family="${CHART_FONT_FAMILY}" font-size="17" font-weight="bold" fill="#1d1d1d">${xml(clip(title, 90))}</text>`,
  ].join('\n');
}

/** The time axis at `axisY` (five UTC ticks) and the legend under it. */
function timeAxis(
  axisY: number,
  { t0, t1 }: { t0: number; t1: number },
  legend: readonly { label: string; colour: string }[],
): string[] {
  const plot = WIDTH - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * plot;
  const font = `font-family="${CHART_FONT_FAMILY}"`;
  const parts = [
    `<line x1="${LEFT}" y1="${axisY}" x2="${LEFT + plot}" y2="${axisY}" stroke="#555" stroke-width="1"/>`,
  ];
  for (let i = 0; i <= 4; i += 1) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const tx = x(t);
    parts.push(`<line x1="${tx}" y1="${axisY}" x2="${tx}" y2="${axisY + 5}" stroke="#555"/>`);
    parts.push(
      `<text x="${tx}" y="${axisY + 19}" ${font} font-size="11" text-anchor="middle" fill="#333">${clock(t)}</text>`,
    );
  }
  parts.push(
    `<text x="${LEFT + plot}" y="${axisY + 34}" ${font} font-size="10" text-anchor="end" fill="#666">UTC</text>`,
  );
  legend.forEach((l, i) => {
    const lx = LEFT + i * 105;
    const ly = axisY + 30;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="12" rx="2" fill="${l.colour}"/>`);
    parts.push(
      `<text x="${lx + 16}" y="${ly + 11}" ${font} font-size="11" fill="#333">${xml(l.label)}</text>`,
    );
  });
  return parts;
}

function draw(
  name: string,
  title: string,
  lanes: readonly string[],
  segments: readonly Segment[],
  { t0, t1 }: { t0: number; t1: number },
  legend: readonly { label: string; colour: string }[],
): Chart {
  const height = TOP + lanes.length * ROW + AXIS + (legend.length > 0 ? 24 : 0);
  const plot = WIDTH - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - t0) / (t1 - t0)) * plot;
  const y = (lane: string) => TOP + lanes.indexOf(lane) * ROW;
  const font = `font-family="${CHART_FONT_FAMILY}"`;
  const parts: string[] = [header(height, title)];
  lanes.forEach((lane, i) => {
    const top = TOP + i * ROW;
    if (i % 2 === 0)
      parts.push(`<rect x="${LEFT}" y="${top}" width="${plot}" height="${ROW}" fill="#f4f4f4"/>`);
    parts.push(
      `<text x="${LEFT - 8}" y="${top + ROW / 2 + 5}" ${font} font-size="12" text-anchor="end" fill="#1d1d1d">${xml(clip(lane, 34))}</text>`,
    );
  });
  for (const s of segments) {
    const left = x(s.from);
    const w = Math.max(2, x(s.to) - left);
    parts.push(
      `<rect x="${left.toFixed(1)}" y="${y(s.lane) + 5}" width="${w.toFixed(1)}" height="${ROW - 10}" rx="3" fill="${s.colour}"/>`,
    );
  }
  parts.push(...timeAxis(TOP + lanes.length * ROW, { t0, t1 }, legend));
  parts.push('</svg>');
  return { name, title, svg: parts.join('\n'), width: WIDTH, height };
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function xml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}
