import { excerpt, parseCount, splitLines, type Unknown, unknown } from './result.js';

export interface RedisInfoStats {
  readonly kind: 'stats';
  /** Cumulative since the server started (or CONFIG RESETSTAT): take ratios over differences. */
  readonly keyspaceHits: number;
  readonly keyspaceMisses: number;
  readonly expiredKeys: number | null;
  readonly evictedKeys: number | null;
  /** From the server section when the reply has it: a new one means Redis restarted. */
  readonly runId: string | null;
}

export type RedisInfoStatsResult = RedisInfoStats | Unknown;

/**
 * Reads the reply to Redis `INFO stats` (CRLF lines of `field:value`, `# Section` headers),
 * possibly following `INFO server`'s (for `run_id`).
 */
export function parseRedisInfoStats(text: string): RedisInfoStatsResult {
  const fields = new Map<string, string>();
  const lines = splitLines(text);
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    // Exact names: `active_defrag_hits` must not pass for `keyspace_hits`.
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const hits = parseCount(fields.get('keyspace_hits') ?? '');
  const misses = parseCount(fields.get('keyspace_misses') ?? '');
  if (hits === null || misses === null) {
    const first = lines.find((l) => l.trim() !== '');
    if (first === undefined) return unknown('INFO stats reply is empty');
    if (/^-|^\(error\)|^(?:ERR|NOAUTH|WRONGPASS|DENIED|LOADING)\b/.test(first)) {
      return unknown(`Redis answered with an error: ${excerpt(first)}`);
    }
    return unknown(`no valid keyspace_hits/keyspace_misses in INFO stats reply: ${excerpt(text)}`);
  }
  return {
    kind: 'stats',
    keyspaceHits: hits,
    keyspaceMisses: misses,
    expiredKeys: parseCount(fields.get('expired_keys') ?? ''),
    evictedKeys: parseCount(fields.get('evicted_keys') ?? ''),
    runId: /^[0-9a-f]{40}$/.test(fields.get('run_id') ?? '') ? (fields.get('run_id') ?? null) : null,
  };
}
