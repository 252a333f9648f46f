import { createRequire } from 'node:module';
import { renderAsync } from '@resvg/resvg-js';
import { CHART_FONT_FAMILY } from '../domain/incident-charts.js';

/**
 * SVG → PNG with resvg (Rust, prebuilt for linux x64 and arm64 inside its npm packages; no
 * download or compile at install), off the event loop. The text font comes from the
 * dejavu-fonts-ttf package, never from the system: the slim image has no fonts installed.
 */

export type PngRenderer = (svg: string) => Promise<Uint8Array>;

const require = createRequire(import.meta.url);

/** The font files the charts are drawn with (the family CHART_FONT_FAMILY names). */
export function chartFontFiles(): string[] {
  return [
    require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf'),
    require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf'),
  ];
}

export function createPngRenderer(): PngRenderer {
  const fontFiles = chartFontFiles();
  return async (svg) => {
    const image = await renderAsync(svg, {
      font: { loadSystemFonts: false, fontFiles, defaultFontFamily: CHART_FONT_FAMILY },
      fitTo: { mode: 'original' },
      logLevel: 'off',
    });
    return image.asPng();
  };
}
