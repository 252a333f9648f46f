import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAccessLogHitRatio } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseAccessLogHitRatio (tail -n N /var/log/nginx/okome_access.log)', () => {
  it('real lines from nginx with the OKOME log_format', () => {
    expect(parseAccessLogHitRatio(fixture('access-log-okome.txt'))).toEqual({
      kind: 'hit-ratio',
      lines: 13,
      counts: { HIT: 6, MISS: 3, BYPASS: 1, EXPIRED: 0, UPDATING: 0, STALE: 1, REVALIDATED: 0, '-': 2 },
      other: 0,
      withoutField: 0,
      hitRatio: 6 / 9,
    });
  });

  it('takes lines as an array too, and ignores empty ones', () => {
    const lines = fixture('access-log-okome.txt').split('\n');
    expect(lines.at(-1)).toBe('');
    expect(parseAccessLogHitRatio(lines)).toMatchObject({ lines: 13, hitRatio: 6 / 9 });
  });

  it('every status, quoted values, lines without the field, and look-alike fields', () => {
    const lines = [
      'a cache=EXPIRED rt=0.1',
      'a cache=UPDATING',
      'a cache=REVALIDATED',
      'a cache="HIT" rt=0.0',
      'cache=MISS at the start',
      'a upstream_cache=HIT nocache=HIT', // neither is the cache= field
      'a cache=WEIRD',
      'a line without the field',
    ];
    expect(parseAccessLogHitRatio(lines)).toEqual({
      kind: 'hit-ratio',
      lines: 8,
      counts: { HIT: 1, MISS: 1, BYPASS: 0, EXPIRED: 1, UPDATING: 1, STALE: 0, REVALIDATED: 1, '-': 0 },
      other: 1,
      withoutField: 2,
      hitRatio: 0.5,
    });
  });

  it('no HIT or MISS at all: the ratio is null, not 0', () => {
    expect(parseAccessLogHitRatio('x cache=BYPASS\ny cache=-\n')).toMatchObject({
      kind: 'hit-ratio',
      hitRatio: null,
    });
  });

  it('an empty tail, or a log_format without cache=, is unknown', () => {
    expect(parseAccessLogHitRatio('')).toEqual({
      kind: 'unknown',
      reason: 'no access-log lines to read (empty tail)',
    });
    expect(parseAccessLogHitRatio([])).toMatchObject({ kind: 'unknown' });
    expect(
      parseAccessLogHitRatio('127.0.0.1 - - [29/Nov/2026:04:06:14 +0000] "GET / HTTP/1.1" 200 6\n'),
    ).toEqual({
      kind: 'unknown',
      reason: 'none of 1 lines has a cache= field: is $upstream_cache_status in the log_format?',
    });
  });

  it('reads 100k lines quickly', () => {
    const real = fixture('access-log-okome.txt')
      .split('\n')
      .filter((l) => l !== '');
    const lines = Array.from({ length: 100_000 }, (_, i) => real[i % real.length] ?? '');
    const started = performance.now();
    const r = parseAccessLogHitRatio(lines.join('\n'));
    const elapsed = performance.now() - started;
    expect(r).toMatchObject({ kind: 'hit-ratio', lines: 100_000 });
    expect(elapsed).toBeLessThan(1000);
  });
});
