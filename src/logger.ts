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

const SECRET_TEXT =
  /(xox[abpre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)/g;

/** Masks tokens and key material inside free text (error messages, command output). */
export function scrubSecrets(text: string): string {
  return text.replace(SECRET_TEXT, '[Redacted]');
}

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Tests pass a memory stream to assert on log lines. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'okome',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
      formatters: {
        log(object) {
          // Error messages and outputs are free text: scrub tokens that slipped into them.
          for (const [k, v] of Object.entries(object)) {
            if (typeof v === 'string') object[k] = scrubSecrets(v);
          }
          return object;
        },
      },
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
