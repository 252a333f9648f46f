import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseAccessLogHitRatio,
  parseChaosFlag,
  parseDf,
  parseIpAddr,
  parseIpLink,
  parseIptables,
  parseJournal,
  parseMeminfo,
  parseRateLimitKey,
  parseRedisInfoStats,
  parseServiceState,
  parseStreamingDirectives,
  parseSystemctlStatus,
  serviceActiveStates,
} from '../../src/domain/parse/index.js';

/**
 * Every parser, on anything: it returns one of its declared kinds, never throws, and an
 * `unknown` always carries a reason. Structured garbage is built from the words of the real
 * fixtures, so that it reaches past the first line's checks.
 */

const dir = join(import.meta.dirname, '../fixtures/parse');
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.txt'));
const read = (name: string) => readFileSync(join(dir, name), 'utf8');

interface Case {
  readonly name: string;
  readonly parse: (text: string) => { readonly kind: string; readonly reason?: string };
  readonly kinds: readonly string[];
  /** Empty output is a real answer (iptables-save with no table loaded prints nothing). */
  readonly emptyIs?: string;
  readonly fixtures: readonly string[];
}

const byPrefix = (prefix: string) => fixtures.filter((f) => f.startsWith(prefix));

const cases: readonly Case[] = [
  {
    name: 'parseServiceState (exit 0)',
    parse: (s) => parseServiceState(s, 0),
    kinds: [...serviceActiveStates, 'not-found', 'unknown'],
    fixtures: [],
  },
  {
    name: 'parseServiceState (exit 3)',
    parse: (s) => parseServiceState(s, 3),
    kinds: [...serviceActiveStates, 'not-found', 'unknown'],
    fixtures: [],
  },
  {
    name: 'parseSystemctlStatus',
    parse: (s) => parseSystemctlStatus(s, 3),
    kinds: ['status', 'not-found', 'unknown'],
    fixtures: byPrefix('systemctl-status-'),
  },
  {
    name: 'parseIpAddr',
    parse: parseIpAddr,
    kinds: ['addresses', 'unknown'],
    fixtures: byPrefix('ip-addr-'),
  },
  { name: 'parseIpLink', parse: parseIpLink, kinds: ['links', 'unknown'], fixtures: byPrefix('ip-link-') },
  { name: 'parseDf', parse: parseDf, kinds: ['mounts', 'unknown'], fixtures: byPrefix('df-') },
  { name: 'parseMeminfo', parse: parseMeminfo, kinds: ['memory', 'unknown'], fixtures: byPrefix('meminfo-') },
  { name: 'parseChaosFlag', parse: parseChaosFlag, kinds: ['present', 'absent', 'unknown'], fixtures: [] },
  {
    name: 'parseIptables',
    parse: (s) => parseIptables(s, ['-A INPUT -p vrrp -j ACCEPT']),
    kinds: ['iptables', 'unknown'],
    emptyIs: 'iptables',
    fixtures: byPrefix('iptables-'),
  },
  {
    name: 'parseStreamingDirectives',
    parse: parseStreamingDirectives,
    kinds: ['streaming', 'unknown'],
    fixtures: byPrefix('nginx-T-'),
  },
  {
    name: 'parseAccessLogHitRatio',
    parse: parseAccessLogHitRatio,
    kinds: ['hit-ratio', 'unknown'],
    fixtures: byPrefix('access-log-'),
  },
  {
    name: 'parseJournal',
    parse: parseJournal,
    kinds: ['journal', 'unknown'],
    fixtures: byPrefix('journal-'),
  },
  {
    name: 'parseRedisInfoStats',
    parse: parseRedisInfoStats,
    kinds: ['stats', 'unknown'],
    fixtures: byPrefix('redis-info-'),
  },
];

function checkResult(c: Case, text: string): void {
  const r = c.parse(text);
  expect(c.kinds).toContain(r.kind);
  if (r.kind === 'unknown') {
    expect(typeof r.reason).toBe('string');
    expect(r.reason?.length).toBeGreaterThan(0);
  }
}

/** Words, spaces and punctuation of a parser's real fixtures, plus some hostile characters. */
function vocabulary(c: Case): fc.Arbitrary<string> {
  const words = new Set<string>([
    '\n',
    '\r\n',
    ' ',
    '\t',
    '\\',
    '"',
    "'",
    '#',
    '{',
    '}',
    ';',
    ':',
    '%',
    '[',
    ']',
    '\u0000',
  ]);
  for (const f of c.fixtures) {
    for (const w of read(f).split(/(\s+|[{};:\\])/)) if (w !== '' && words.size < 400) words.add(w);
  }
  return fc.constantFrom(...words);
}

describe.each(cases)('$name on garbage', (c) => {
  it('empty input is unknown with a reason (or, where it is one, a real answer)', () => {
    const r = c.parse('');
    expect(r.kind).toBe(c.emptyIs ?? 'unknown');
    if (c.emptyIs === undefined) expect(r.reason).toMatch(/\S/);
  });

  it('never throws on any string (fast-check)', () => {
    fc.assert(fc.property(fc.string(), (s) => checkResult(c, s)));
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (s) => checkResult(c, s)));
  });

  it('never throws on strings made of real output words (fast-check)', () => {
    fc.assert(
      fc.property(fc.string({ unit: vocabulary(c), maxLength: 300 }), (s) => checkResult(c, s)),
      {
        numRuns: 300,
      },
    );
  });

  it('stays fast on 1 MB pathological input', () => {
    const mb = 1 << 20;
    const inputs = [
      ' '.repeat(mb),
      '\n'.repeat(mb),
      '{'.repeat(mb),
      '}'.repeat(mb),
      '"'.repeat(mb),
      '\\'.repeat(mb),
      '#'.repeat(mb),
      'a'.repeat(mb),
      '1 '.repeat(mb / 2),
      ':'.repeat(mb),
      '( '.repeat(mb / 2),
      'cache='.repeat(mb / 6),
      `Nov 29 03:12:07 h x[${'1'.repeat(mb)}`,
      `http { server { location /api/ { proxy_read_timeout ${'1'.repeat(mb)}x; } } }`,
      `● x.timer\n     Active: active ${'(a '.repeat(mb / 3)}`,
      `1: eth0    inet ${'1.'.repeat(mb / 2)}`,
    ];
    for (const input of inputs) {
      const started = performance.now();
      checkResult(c, input);
      expect(performance.now() - started, `${c.name} on ${JSON.stringify(input.slice(0, 20))}…`).toBeLessThan(
        1500,
      );
    }
  });
});

describe.each(cases.filter((c) => c.fixtures.length > 0))(
  '$name on real output cut short or shuffled',
  (c) => {
    it('every truncation of every real fixture', () => {
      for (const f of c.fixtures) {
        const text = read(f);
        const step = Math.max(1, Math.floor(text.length / 1500));
        for (let n = 0; n <= text.length; n += step) checkResult(c, text.slice(0, n));
      }
    });

    it('real fixtures with lines dropped, doubled or swapped (fast-check)', () => {
      const texts = c.fixtures.map(read);
      const mutated = fc
        .tuple(
          fc.constantFrom(...texts),
          fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('drop', 'double', 'swap'))),
        )
        .map(([text, edits]) => {
          const lines = text.split('\n');
          for (const [a, b, op] of edits) {
            const i = a % lines.length;
            const j = b % lines.length;
            if (op === 'drop') lines.splice(i, 1);
            else if (op === 'double') lines.splice(i, 0, lines[i] ?? '');
            else [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
          }
          return lines.join('\n');
        });
      fc.assert(
        fc.property(mutated, (s) => checkResult(c, s)),
        { numRuns: 200 },
      );
    });
  },
);

describe('parseRateLimitKey on garbage', () => {
  it('returns a key or null, never throws (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string().map((s) => `okome:budget:rl:${s}`),
        ),
        (s) => {
          const r = parseRateLimitKey(s);
          if (r !== null) {
            expect(Number.isSafeInteger(r.window)).toBe(true);
            expect(r.agent.length).toBeGreaterThan(0);
          }
        },
      ),
    );
  });
});
