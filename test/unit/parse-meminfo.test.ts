import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMeminfo } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseMeminfo (cat /proc/meminfo)', () => {
  it("this machine's /proc/meminfo", () => {
    const text = fixture('meminfo-host.txt');
    const total = Number(/^MemTotal:\s+(\d+)/m.exec(text)?.[1]);
    const available = Number(/^MemAvailable:\s+(\d+)/m.exec(text)?.[1]);
    const r = parseMeminfo(text);
    expect(r).toMatchObject({ kind: 'memory', totalKb: total, availableKb: available, estimated: false });
    if (r.kind !== 'memory') return;
    expect(r.usedPercent).toBeCloseTo(((total - available) / total) * 100, 10);
  });

  it('a Pi 3 under pressure', () => {
    const text = 'MemTotal:         945164 kB\nMemFree:           20112 kB\nMemAvailable:      56708 kB\n';
    const r = parseMeminfo(text);
    expect(r).toMatchObject({ kind: 'memory', totalKb: 945164, availableKb: 56708 });
    if (r.kind === 'memory') expect(r.usedPercent).toBeCloseTo(94.0, 1);
  });

  it('without MemAvailable (kernel < 3.14) it estimates and says so', () => {
    const text = 'MemTotal:  1000 kB\nMemFree:  100 kB\nBuffers:  50 kB\nCached:  250 kB\nSwapCached: 0 kB\n';
    expect(parseMeminfo(text)).toEqual({
      kind: 'memory',
      totalKb: 1000,
      availableKb: 400,
      usedPercent: 60,
      estimated: true,
    });
  });

  it('garbage and impossible figures are unknown', () => {
    expect(parseMeminfo('')).toEqual({
      kind: 'unknown',
      reason: 'no MemTotal line in /proc/meminfo output: ""',
    });
    expect(parseMeminfo('cat: /proc/meminfo: No such file or directory\n').kind).toBe('unknown');
    expect(parseMeminfo('MemTotal: 0 kB\nMemAvailable: 0 kB\n')).toEqual({
      kind: 'unknown',
      reason: 'MemTotal is 0 kB',
    });
    expect(parseMeminfo('MemTotal: 10 kB\nMemAvailable: 20 kB\n')).toMatchObject({
      kind: 'unknown',
      reason: 'MemAvailable (20 kB) exceeds MemTotal (10 kB)',
    });
    expect(parseMeminfo('MemTotal: 10 kB\n')).toMatchObject({ kind: 'unknown' });
    // Cut after the first line: MemAvailable is missing and so is MemFree.
    const first = fixture('meminfo-host.txt').split('\n')[0] ?? '';
    expect(parseMeminfo(first).kind).toBe('unknown');
  });
});
