import { splitLines, type Unknown, unknown } from './result.js';

/** Values of nginx's `$upstream_cache_status`; `-` when the request did not go through a cache. */
export const cacheStatuses = [
  'HIT',
  'MISS',
  'BYPASS',
  'EXPIRED',
  'UPDATING',
  'STALE',
  'REVALIDATED',
  '-',
] as const;
export type CacheStatus = (typeof cacheStatuses)[number];

export interface AccessLogHitRatio {
  readonly kind: 'hit-ratio';
  readonly lines: number;
  readonly counts: Readonly<Record<CacheStatus, number>>;
  /** Lines whose cache= value is none of the known statuses. */
  readonly other: number;
  /** Lines with no cache= field at all. */
  readonly withoutField: number;
  /** HIT / (HIT + MISS), as the runbook defines it; null when there is neither. */
  readonly hitRatio: number | null;
}

export type AccessLogResult = AccessLogHitRatio | Unknown;

const KNOWN: ReadonlySet<string> = new Set(cacheStatuses);
const isCacheStatus = (value: string): value is CacheStatus => KNOWN.has(value);
const FIELD = 'cache=';

/** Reads the tail of the OKOME access log (`tail -n N …`), as one string or as lines. */
export function parseAccessLogHitRatio(lines: string | readonly string[]): AccessLogResult {
  const list = (typeof lines === 'string' ? splitLines(lines) : lines).filter((l) => l.trim() !== '');
  if (list.length === 0) return unknown('no access-log lines to read (empty tail)');
  const counts: Record<CacheStatus, number> = {
    HIT: 0,
    MISS: 0,
    BYPASS: 0,
    EXPIRED: 0,
    UPDATING: 0,
    STALE: 0,
    REVALIDATED: 0,
    '-': 0,
  };
  let other = 0;
  let withoutField = 0;
  for (const line of list) {
    const status = cacheField(line);
    if (status === null) withoutField++;
    else if (isCacheStatus(status)) counts[status]++;
    else other++;
  }
  if (withoutField === list.length) {
    return unknown(
      `none of ${list.length} lines has a cache= field: is $upstream_cache_status in the log_format?`,
    );
  }
  const decided = counts.HIT + counts.MISS;
  return {
    kind: 'hit-ratio',
    lines: list.length,
    counts,
    other,
    withoutField,
    hitRatio: decided === 0 ? null : counts.HIT / decided,
  };
}

/** The value of the first `cache=` that starts a field (not `upstream_cache=` or `nocache=`). */
function cacheField(line: string): string | null {
  for (let at = line.indexOf(FIELD); at >= 0; at = line.indexOf(FIELD, at + 1)) {
    const before = at === 0 ? ' ' : (line[at - 1] ?? ' ');
    if (/[\w-]/.test(before)) continue;
    let start = at + FIELD.length;
    if (line[start] === '"') start++;
    let end = start;
    while (end < line.length && !/[\s",;]/.test(line[end] ?? ' ')) end++;
    return line.slice(start, end);
  }
  return null;
}
