import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRedisInfoStats } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseRedisInfoStats (INFO stats)', () => {
  it('a real Redis 7 reply, CRLF and all', () => {
    const text = fixture('redis-info-stats.txt');
    expect(text).toContain('\r\n');
    expect(text).toContain('active_defrag_hits:0'); // must not be taken for keyspace_hits
    expect(parseRedisInfoStats(text)).toEqual({
      kind: 'stats',
      keyspaceHits: 3,
      keyspaceMisses: 1,
      expiredKeys: 0,
      evictedKeys: 0,
      runId: null,
    });
  });

  it('takes run_id from an INFO server section before the stats (a new one: Redis restarted)', () => {
    const runId = '0123456789abcdef0123456789abcdef01234567';
    const text = `# Server\r\nredis_version:7.0.15\r\nrun_id:${runId}\r\n\r\n# Stats\r\nkeyspace_hits:1\r\nkeyspace_misses:2\r\n`;
    expect(parseRedisInfoStats(text)).toMatchObject({ keyspaceHits: 1, keyspaceMisses: 2, runId });
    expect(parseRedisInfoStats(text.replace(runId, 'not-an-id'))).toMatchObject({ runId: null });
  });

  it("the brief's shape", () => {
    const text = '# Stats\r\ntotal_connections_received:5\r\nkeyspace_hits:120\r\nkeyspace_misses:30\r\n';
    expect(parseRedisInfoStats(text)).toMatchObject({
      keyspaceHits: 120,
      keyspaceMisses: 30,
      expiredKeys: null,
    });
  });

  it('errors and garbage are unknown with the reason', () => {
    expect(parseRedisInfoStats('')).toEqual({ kind: 'unknown', reason: 'INFO stats reply is empty' });
    expect(parseRedisInfoStats('NOAUTH Authentication required.\n')).toEqual({
      kind: 'unknown',
      reason: 'Redis answered with an error: "NOAUTH Authentication required."',
    });
    expect(parseRedisInfoStats('-ERR unknown command\r\n').kind).toBe('unknown');
    expect(parseRedisInfoStats('keyspace_hits:12x\r\nkeyspace_misses:3\r\n')).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/^no valid keyspace_hits\/keyspace_misses/),
    });
    expect(parseRedisInfoStats('# Stats\r\nkeyspace_hits:12\r\n').kind).toBe('unknown');
  });
});
