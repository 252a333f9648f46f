import { excerpt, parseCount, splitLines, type Unknown, unknown } from './result.js';

export interface MemoryUsage {
  readonly kind: 'memory';
  readonly totalKb: number;
  readonly availableKb: number;
  /** (total − available) / total × 100. */
  readonly usedPercent: number;
  /**
   * True when the kernel has no MemAvailable (before 3.14) and availability was estimated
   * as MemFree + Buffers + Cached, which overstates it (not all cache can be reclaimed).
   */
  readonly estimated: boolean;
}

export type MemoryResult = MemoryUsage | Unknown;

const FIELD = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/;

/** Reads `cat /proc/meminfo`. */
export function parseMeminfo(stdout: string): MemoryResult {
  const fields = new Map<string, number>();
  for (const line of splitLines(stdout)) {
    const m = FIELD.exec(line);
    const value = parseCount(m?.[2] ?? '');
    if (m?.[1] && value !== null) fields.set(m[1], value);
  }
  const total = fields.get('MemTotal');
  if (total === undefined) return unknown(`no MemTotal line in /proc/meminfo output: ${excerpt(stdout)}`);
  if (total === 0) return unknown('MemTotal is 0 kB');

  let available = fields.get('MemAvailable');
  let estimated = false;
  if (available === undefined) {
    const free = fields.get('MemFree');
    if (free === undefined) return unknown('neither MemAvailable nor MemFree in /proc/meminfo output');
    available = free + (fields.get('Buffers') ?? 0) + (fields.get('Cached') ?? 0);
    estimated = true;
  }
  if (available > total) {
    if (!estimated) return unknown(`MemAvailable (${available} kB) exceeds MemTotal (${total} kB)`);
    available = total;
  }
  return {
    kind: 'memory',
    totalKb: total,
    availableKb: available,
    usedPercent: ((total - available) / total) * 100,
    estimated,
  };
}
