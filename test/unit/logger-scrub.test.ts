import { describe, expect, it } from 'vitest';
import { createLogger, type Logger, logFormatFor } from '../../src/logger.js';
import { boltLogger } from '../../src/slack/bolt-app.js';

/**
 * No credential reaches a log line (issue 16 point 4): every token shape, in every place a value
 * can ride in a line: the message (Bolt puts everything there), format arguments, nested fields
 * under innocent keys, arrays, an error's message, stack and cause, a child logger's bindings.
 */

const HMAC_SECRET = 'keepalived-hmac-secret-2026-xyz';
const ALERTMANAGER_TOKEN = 'am-webhook-token-Q7f2k9Lm3Np8';
/** A configured secret JSON has to escape inside a string. */
const QUOTED_SECRET = 'p"ss\\word-with-escapes';

const TOKENS: ReadonlyArray<readonly [string, string]> = [
  ['bot token', 'xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
  ['user token', 'xoxp-1234567890-1234567890-1234567890123-0123456789abcdef0123456789abcdef'],
  ['app-level token', 'xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef'],
  ['refresh token', 'xoxe-1-My0xLTAxMjM0NTY3ODktMTIzNDU2Nzg5MDEyMy0wMTIzNDU2Nzg5YWJjZGVm'],
  ['rotating access token', 'xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MDEyMy0wMTIz'],
  ['bearer credential', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJva29tZSJ9.c2lnbmF0dXJl'],
  ['keepalived HMAC secret', HMAC_SECRET],
  ['Alertmanager webhook token', ALERTMANAGER_TOKEN],
  ['secret with quotes and backslashes', QUOTED_SECRET],
];

/** What must not appear: the token, or for a bearer header its credential part. */
function secretPart(token: string): string {
  return token.startsWith('Bearer ') ? token.slice('Bearer '.length) : token;
}

function capture(): { log: Logger; lines: () => string[] } {
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: { write: (line: string) => lines.push(line) },
    secrets: [HMAC_SECRET, ALERTMANAGER_TOKEN, QUOTED_SECRET, undefined],
  });
  return { log, lines: () => lines };
}

const PLACES: ReadonlyArray<readonly [string, (log: Logger, token: string) => void]> = [
  ['the message', (log, t) => log.info(`posting with ${t} now`)],
  ['a format argument', (log, t) => log.info('header was %s', t)],
  ['the start of a line in multi-line output', (log, t) => log.info({ output: `one\n${t}\ntwo` }, 'x')],
  ['a nested field under an innocent key', (log, t) => log.info({ request: { note: { text: t } } }, 'x')],
  ['an array', (log, t) => log.warn({ args: ['--token', t] }, 'x')],
  ['an error under err', (log, t) => log.error({ err: new Error(`auth failed for ${t}`) }, 'call failed')],
  ['an error as the only argument', (log, t) => log.error(new Error(`auth failed for ${t}`))],
  [
    'an error cause',
    (log, t) => log.error({ err: new Error('outer', { cause: new Error(`inner ${t}`) }) }, 'x'),
  ],
  [
    "an error's stack only",
    (log, t) => {
      const error = new Error('stack only');
      error.stack = `Error: stack only\n    at call (${t})`;
      log.error({ err: error }, 'x');
    },
  ],
  ['a child logger binding', (log, t) => log.child({ session: t }).info('x')],
  ["Bolt's logger", (log, t) => boltLogger(log).error('An API error occurred:', t, { token: t })],
];

describe('log scrubbing', () => {
  describe.each(TOKENS)('%s', (_name, token) => {
    it.each(PLACES)('is masked in %s', (_place, write) => {
      const { log, lines } = capture();
      write(log, token);
      const out = lines().join('');
      expect(out).not.toBe('');
      expect(out).not.toContain(secretPart(token));
      expect(out).toContain('[Redacted]');
      // The line is still JSON a log shipper can read.
      for (const line of lines()) expect(() => JSON.parse(line)).not.toThrow();
    });
  });

  it('masks a private key in command output, and keeps ordinary text as written', () => {
    const { log, lines } = capture();
    log.warn(
      {
        output:
          'ok\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n',
      },
      'Bearer of bad news: xoxo to the team, 12 tokens left',
    );
    const line = JSON.parse(lines()[0] ?? '{}') as { output: string; msg: string };
    expect(line.output).toBe('ok\n[Redacted]\n');
    expect(line.msg).toBe('Bearer of bad news: xoxo to the team, 12 tokens left');
  });

  it('does not mask by value a configured secret too short to be told from ordinary words', () => {
    const lines: string[] = [];
    const log = createLogger({ destination: { write: (l: string) => lines.push(l) }, secrets: ['ok'] });
    log.info('ok then');
    expect(JSON.parse(lines[0] ?? '{}').msg).toBe('ok then');
  });
});

describe('readable logs on a terminal, JSON otherwise', () => {
  it('the format follows stderr: pretty on a TTY, JSON on a pipe; OKOME_LOG_FORMAT decides when set', () => {
    expect(logFormatFor({}, true)).toBe('pretty');
    expect(logFormatFor({}, false)).toBe('json');
    expect(logFormatFor({}, undefined)).toBe('json');
    expect(logFormatFor({ OKOME_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormatFor({ OKOME_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });

  it('pretty: time, level, message and fields on one line, still scrubbed', () => {
    const lines: string[] = [];
    const logger = createLogger({
      format: 'pretty',
      destination: { write: (line: string) => lines.push(line) },
      secrets: ['hook-secret-0123456789'],
    });
    logger.info(
      { signal: 'SIGTERM', node: 'pi a', token: 'xoxb-1-2-abc' },
      'stopping with hook-secret-0123456789',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}stopping with \[Redacted\] signal=SIGTERM node="pi a" token=\[Redacted\]\n$/,
    );
    expect(() => JSON.parse(lines[0] ?? '')).toThrow();
  });

  it('json (the default): one JSON object per line', () => {
    const lines: string[] = [];
    createLogger({ destination: { write: (line: string) => lines.push(line) } }).warn({ a: 1 }, 'hi');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 40, msg: 'hi', a: 1 });
  });
});
