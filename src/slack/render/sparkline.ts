const BARS = '▁▂▃▄▅▆▇█';

/** Ratios in [0, 1] as a sparkline; null (no data) shows as a gap. */
export function sparkline(values: readonly (number | null)[]): string {
  return values
    .map((v) => {
      if (v === null || Number.isNaN(v)) return '·';
      const i = Math.min(BARS.length - 1, Math.max(0, Math.round(v * (BARS.length - 1))));
      return BARS[i] ?? '·';
    })
    .join('');
}
