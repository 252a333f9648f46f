import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

// Anything that can carry a credential is censored wherever it appears in a log line.
export const REDACT_PATHS = [
  'token',
  '*.token',
  'botToken',
  'appToken',
  'signingSecret',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'privateKey',
  '*.privateKey',
  'passphrase',
  '*.passphrase',
  'authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'env.SLACK_BOT_TOKEN',
  'env.SLACK_APP_TOKEN',
  'env.SLACK_SIGNING_SECRET',
  'env.REDIS_PASSWORD',
];

// Credentials by their shape: Slack tokens (xoxb-, xoxp-, xoxe-, xoxe.xoxp-, xapp-), HTTP
// authorization values (Bearer/Basic, 8 characters or more: "Bearer of" is prose) and PEM private
// keys. No \b anchors: in a serialized line a token after a newline follows the letter n of "\n".
// A key's newlines are escaped there too, so the key pattern stays inside one JSON string.
const SECRET_SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]+/g, '[Redacted]'],
  [/xapp-[A-Za-z0-9-]+/g, '[Redacted]'],
  [/(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1$2[Redacted]'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----(?:[^"\\]|\\.)*?-----END [A-Z ]*PRIVATE KEY-----/g, '[Redacted]'],
];

/**
 * Configured secrets shorter than this are not masked by value: they would mask ordinary words
 * all over the logs. The environment checks ask for 16 characters (webhook token, hook secrets)
 * or 8 (signing secret); key-based redaction still covers any field named like a secret.
 */
export const MIN_SCRUBBED_SECRET_LENGTH = 8;

/** Masks tokens and key material inside free text (error messages, command output). */
export function scrubSecrets(text: string): string {
  return SECRET_SHAPES.reduce((out, [shape, mask]) => out.replace(shape, mask), text);
}

/**
 * A scrubber for one serialized log line: the shapes above plus every configured secret value,
 * as written and as JSON escapes it inside a string, longest first so no tail of one survives.
 */
export function createLineScrubber(secrets: readonly (string | undefined)[]): (line: string) => string {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SCRUBBED_SECRET_LENGTH) continue;
    values.add(secret);
    values.add(JSON.stringify(secret).slice(1, -1));
  }
  const byLength = [...values].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = scrubSecrets(line);
    for (const value of byLength) if (out.includes(value)) out = out.replaceAll(value, '[Redacted]');
    return out;
  };
}

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Tests pass a memory stream to assert on log lines. */
  readonly destination?: DestinationStream;
  /**
   * Secret values from the environment (webhook token, keepalived HMAC secrets, signing secret,
   * Redis password): masked wherever they appear in a line, not only under a secret's key.
   */
  readonly secrets?: readonly (string | undefined)[];
  /** JSON lines (default) or one readable line per entry for a terminal. */
  readonly format?: LogFormat;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const scrubLine = createLineScrubber(options.secrets ?? []);
  const destination = options.destination ?? pino.destination({ dest: 2, sync: false });
  return pino(
    {
      name: options.name ?? 'okome',
      level: options.level ?? 'info',
      // Fields named like a credential are censored by key...
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      // ...and every serialized line is scrubbed as a whole: msg (Bolt puts everything there),
      // nested fields, err.message, err.stack and causes alike.
      hooks: { streamWrite: scrubLine },
    },
    options.format === 'pretty' ? prettyStream(destination) : destination,
  );
}

/** JSON lines for a log collector; `pretty` (a person at a terminal): one readable line each. */
export type LogFormat = 'json' | 'pretty';

/** Pretty on a terminal, JSON otherwise (journald, Docker, pipes); OKOME_LOG_FORMAT decides when set. */
export function logFormatFor(env: NodeJS.ProcessEnv, stderrIsTTY: boolean | undefined): LogFormat {
  const asked = env.OKOME_LOG_FORMAT;
  if (asked === 'json' || asked === 'pretty') return asked;
  return stderrIsTTY === true ? 'pretty' : 'json';
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
// pino's own fields, shown in the line's head or not at all.
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

/** `12:00:00.000 INFO  stopping signal=SIGTERM`: a line already scrubbed, reformatted. */
export function formatPrettyLine(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[Number(entry.level)] ?? String(entry.level)).padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`,
    );
  return `${[time, level, String(entry.msg ?? ''), ...fields].filter((part) => part !== '').join(' ')}\n`;
}

function prettyStream(destination: DestinationStream): DestinationStream {
  const flushable = destination as DestinationStream & { flush?: (cb?: (err?: Error) => void) => void };
  return {
    write: (line: string) => destination.write(formatPrettyLine(line)),
    // logger.flush() reaches the real stream through this wrapper.
    ...(flushable.flush === undefined
      ? {}
      : { flush: (cb?: (err?: Error) => void) => flushable.flush?.(cb) }),
  } as DestinationStream;
}
