import { resolve } from 'node:path';
import type { AlertmanagerAuth } from '../alerts/alertmanager-api.js';
import { createApp } from '../app.js';
import { configPath, loadConfig } from '../config/load-config.js';
import { alertmanagerAuthFrom, readEnvOptions, readNodeHookSecrets } from '../config/read-env.js';
import { ErrorCode, isOkomeError, OkomeError } from '../errors.js';
import { createLogger, type Logger, logFormatFor, scrubSecrets } from '../logger.js';
import { createProbes } from '../probes/create-probes.js';
import type { SlackMode } from '../slack/bolt-app.js';
import { type StoreTarget, storeTarget } from '../store/open-store.js';
import { type CliIo, ExitCode } from './cli-io.js';

/** Socket Mode when SLACK_APP_TOKEN is set (no public URL needed), HTTP mode otherwise. */
export function slackModeFrom(env: ReturnType<typeof readEnvOptions>): SlackMode {
  const botToken = env.slackBotToken;
  if (botToken === undefined) {
    throw new OkomeError(
      ErrorCode.EnvInvalid,
      "SLACK_BOT_TOKEN is not set. To resolve, set it to the app's bot token (xoxb-…).",
      { userSafe: true },
    );
  }
  if (env.slackAppToken !== undefined) return { kind: 'socket', botToken, appToken: env.slackAppToken };
  if (env.slackSigningSecret !== undefined) {
    return { kind: 'http', botToken, signingSecret: env.slackSigningSecret };
  }
  throw new OkomeError(
    ErrorCode.EnvInvalid,
    'neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is set. To resolve, set one of them.',
    { userSafe: true },
  );
}

/** `okome serve`: the bot's main job. Resolves with the exit code after a stop signal. */
export async function serveCommand(
  options: { config: string | undefined },
  io: CliIo,
  waitForStop: () => Promise<string>,
): Promise<number> {
  const file = resolve(io.cwd, configPath(options.config, io.env));
  const config = loadConfig(file);
  const env = readEnvOptions(io.env);
  const slack = slackModeFrom(env);
  const nodeHookSecrets = readNodeHookSecrets(config.nodes, io.env);
  const alertmanagerAuth = alertmanagerAuthFrom(config.alerts.alertmanager.auth, env);
  const logger = createLogger({
    format: logFormatFor(io.env, io.stderr.isTTY),
    level: io.env.OKOME_LOG_LEVEL ?? config.log.level,
    secrets: [
      slack.botToken,
      slack.kind === 'socket' ? slack.appToken : slack.signingSecret,
      env.alertmanagerToken,
      env.keepalivedHookSecret,
      ...nodeHookSecrets.values(),
      env.redisPassword,
      env.alertmanagerApiToken,
      env.alertmanagerApiPassword,
      env.databaseUrl === undefined ? undefined : passwordOf(env.databaseUrl),
      io.env.PGPASSWORD,
    ],
  });
  const target = storeTarget(config.store, { configFile: file, databaseUrl: env.databaseUrl });
  // One bot per store: taken before the store is opened, so a second bot's start-up recovery
  // and outbox never touch the first one's rows; released once the store is closed.
  const lock = target.serveLock();
  await lock.acquire();
  let outcome: ServeOutcome;
  try {
    outcome = await runBot(
      { config, env, slack, nodeHookSecrets, alertmanagerAuth, logger, target },
      io,
      waitForStop,
    );
  } finally {
    await lock.release();
  }
  // Said once everything is closed: the process ends right after its last words.
  if (outcome.failure !== undefined) io.stderr.write(outcome.failure);
  return outcome.code;
}

interface ServeOutcome {
  readonly code: number;
  /** Why the bot could not start, for stderr. */
  readonly failure?: string;
}

interface BotSetup {
  readonly config: ReturnType<typeof loadConfig>;
  readonly env: ReturnType<typeof readEnvOptions>;
  readonly slack: SlackMode;
  readonly nodeHookSecrets: ReadonlyMap<string, string>;
  readonly alertmanagerAuth: AlertmanagerAuth;
  readonly logger: Logger;
  readonly target: StoreTarget;
}

/** Opens the store, builds and starts the app, serves until a stop signal, stops it. */
async function runBot(
  { config, env, slack, nodeHookSecrets, alertmanagerAuth, logger, target }: BotSetup,
  io: CliIo,
  waitForStop: () => Promise<string>,
): Promise<ServeOutcome> {
  const store = await target.open();
  const probes = createProbes(config, { redisPassword: env.redisPassword, logger });
  let app: Awaited<ReturnType<typeof createApp>>;
  try {
    app = await createApp({
      config,
      slack,
      slackApiUrl: env.slackApiUrl,
      store,
      probes,
      logger,
      webhooks: {
        alertmanagerToken: env.alertmanagerToken,
        keepalivedSecrets: { shared: env.keepalivedHookSecret, perNode: nodeHookSecrets },
      },
      alertmanagerAuth,
      metricsToken: env.metricsToken,
    });
  } catch (error) {
    await probes.close();
    await store.close();
    const unreachable = isOkomeError(error, ErrorCode.SlackUnavailable);
    return {
      code: unreachable ? ExitCode.SlackUnreachable : ExitCode.ConfigError,
      failure: `okome serve: could not start: ${unreachable ? `${ErrorCode.SlackUnavailable}: ` : ''}${scrubSecrets(error instanceof Error ? error.message : String(error))}\n`,
    };
  }
  io.stdout.write(
    `okome serving (${slack.kind === 'socket' ? 'Socket Mode' : `HTTP mode on port ${app.httpPort ?? '?'}`})\n`,
  );
  const signal = await waitForStop();
  logger.info({ signal }, 'stopping');
  await app.stop();
  logger.flush();
  return { code: ExitCode.Ok };
}

/** The password inside a database URL, so logs scrub it wherever it shows up. */
function passwordOf(url: string): string | undefined {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password === '' ? undefined : password;
  } catch {
    return undefined;
  }
}
