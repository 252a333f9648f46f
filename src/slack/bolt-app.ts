import type { IncomingMessage, ServerResponse } from 'node:http';
import { App, type Logger as BoltLogger, HTTPReceiver, LogLevel } from '@slack/bolt';
import { z } from 'zod';
import type { IncidentNumber } from '../domain/runbook.js';
import type { Logger } from '../logger.js';
import type { ClickInput } from '../remediation/approvals-service.js';

/**
 * The Bolt app: transport only. It acks, parses nothing itself (handlers do, with zod), and
 * hands work to the use cases. Only this folder imports @slack/*.
 */

export type SlackMode =
  | { readonly kind: 'socket'; readonly botToken: string; readonly appToken: string }
  | { readonly kind: 'http'; readonly botToken: string; readonly signingSecret: string };

export interface CommandInput {
  readonly text: string;
  readonly userId: string;
  readonly channelId: string;
  readonly triggerId: string;
  /** Redelivery count (Socket Mode retry_attempt / HTTP X-Slack-Retry-Num). */
  readonly retryNum: number;
}

/** A button click, ids only: the shape the use cases take (remediation's ClickInput). */
export type ActionInput = ClickInput;

/** An immediate answer (sent in the ack: fast, ephemeral unless said otherwise). */
export interface Reply {
  readonly text: string;
  readonly blocks?: readonly unknown[];
  readonly inChannel?: boolean;
}

/** A handler's answer: the ack's reply (none: an empty ack), and the work to run after it. */
export interface Handled {
  readonly reply: Reply | undefined;
  readonly later: (() => Promise<void>) | undefined;
}

export interface SlackHandlers {
  /**
   * Must settle quickly (store work only, well within Slack's 3 s): anything slow goes in
   * `later`, which runs after the ack.
   */
  command(input: CommandInput): Promise<Handled>;
  action?(input: ActionInput): Promise<Handled>;
}

export interface BoltAppOptions {
  readonly mode: SlackMode;
  readonly slackApiUrl: string | undefined;
  readonly logger: Logger;
  readonly handlers: SlackHandlers;
  /** Work started after an ack: tracked so a shutdown can wait for it. */
  readonly track: (work: Promise<void>) => void;
}

export const ACTION_ID_PATTERN = /^okome:/;

/** Where Slack posts commands and clicks in HTTP mode. */
export const SLACK_EVENTS_PATH = '/slack/events';
/**
 * The largest Slack request body taken in HTTP mode. A block_actions click carries the whole
 * card it came from (form-encoded JSON): at least twice the largest golden card's click, and
 * 64 KiB (test/unit/slack-body-limit.test.ts checks both). Bolt's own default is 4 MB.
 */
export const SLACK_EVENTS_MAX_BODY_BYTES = 64 * 1024;

/** Bolt's HTTP receiver as a plain request handler; the body is already read (rawBody). */
export type SlackRequestListener = (req: IncomingMessage, res: ServerResponse, rawBody: Buffer) => void;

export interface BoltApp {
  readonly app: App;
  /** HTTP mode only: mount on the bot's HTTP server at SLACK_EVENTS_PATH. */
  readonly requestListener: SlackRequestListener | undefined;
}

const clickSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().regex(/^[UW][A-Z0-9]+$/) }),
  channel: z.object({ id: z.string().max(32) }).optional(),
  message: z.object({ ts: z.string().max(32) }).optional(),
  trigger_id: z.string().max(200),
  actions: z
    .array(
      z.object({
        action_id: z.string().max(255),
        value: z.string().max(2000).default(''),
        action_ts: z.string().max(32),
      }),
    )
    .min(1),
});

/** Bolt logs free text: everything it says lands in `msg`, which the logger scrubs like any field. */
export function boltLogger(log: Logger): BoltLogger {
  const child = log.child({ component: 'bolt' });
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => child.debug(m.map(String).join(' ')),
    info: (...m: unknown[]) => child.info(m.map(String).join(' ')),
    warn: (...m: unknown[]) => child.warn(m.map(String).join(' ')),
    error: (...m: unknown[]) => child.error(m.map(String).join(' ')),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** apps.connections.open during a reconnect: retried until Slack answers (the socket is the bot's ears). */
export const SOCKET_MODE_RETRY = {
  forever: true,
  factor: 2,
  minTimeout: 1_000,
  maxTimeout: 30_000,
  randomize: true,
} as const;

export function createBoltApp(options: BoltAppOptions): BoltApp {
  const { mode, logger, handlers } = options;
  // The outbox owns retries: Bolt's client must fail fast instead of retrying for minutes.
  const clientOptions = {
    ...(options.slackApiUrl === undefined ? {} : { slackApiUrl: options.slackApiUrl }),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
  };
  const common = {
    token: mode.botToken,
    logger: boltLogger(logger),
    clientOptions,
    deferInitialization: true,
    // Bolt must not answer Slack's retries on its own: dedupe happens in the handlers.
    processBeforeResponse: false,
  };
  // HTTP mode: Bolt's receiver is never started (it would listen unbounded); its request
  // listener is mounted on the bot's bounded server instead, which reads the body first.
  const receiver =
    mode.kind === 'http'
      ? new HTTPReceiver({
          signingSecret: mode.signingSecret,
          endpoints: [SLACK_EVENTS_PATH],
          logger: common.logger,
          processBeforeResponse: false,
          bodyLimit: SLACK_EVENTS_MAX_BODY_BYTES,
        })
      : undefined;
  const app =
    mode.kind === 'socket'
      ? new App({
          ...common,
          appToken: mode.appToken,
          socketMode: true,
          // The Socket Mode client takes its Web API options from installerOptions (by default
          // Bolt's fail-fast ones). It treats an HTTP 5xx or a network error from
          // apps.connections.open as unrecoverable: with no retries, one such answer during a
          // reconnect left the bot disconnected for good. Its own client retries those forever,
          // backing off to 30 s, and waits out a 429 instead of failing.
          installerOptions: {
            clientOptions: {
              ...clientOptions,
              retryConfig: SOCKET_MODE_RETRY,
              rejectRateLimitedCalls: false,
            },
          },
        })
      : new App({ ...common, ...(receiver === undefined ? {} : { receiver }) });
  const requestListener: SlackRequestListener | undefined =
    receiver === undefined
      ? undefined
      : (req, res, rawBody) => {
          // Bolt skips reading a request that already carries its raw body.
          receiver.requestListener(Object.assign(req, { rawBody }), res);
        };

  app.command('/okome', async ({ command, ack, context }) => {
    const { reply, later } = await handlers.command({
      text: command.text,
      userId: command.user_id,
      channelId: command.channel_id,
      triggerId: command.trigger_id,
      retryNum: context.retryNum ?? 0,
    });
    await ack(
      reply === undefined
        ? undefined
        : {
            response_type: reply.inChannel === true ? 'in_channel' : 'ephemeral',
            text: reply.text,
            ...(reply.blocks ? { blocks: reply.blocks as never } : {}),
          },
    );
    if (later !== undefined) options.track(later());
  });

  app.action(ACTION_ID_PATTERN, async ({ ack, body, respond }) => {
    await ack();
    // Interaction payloads are untrusted input: take only what is needed, checked by zod.
    const parsed = clickSchema.safeParse(body);
    if (handlers.action === undefined || !parsed.success) {
      if (!parsed.success)
        logger.warn({ issues: parsed.error.issues.length }, 'malformed block_actions payload ignored');
      return;
    }
    const click = parsed.data;
    const first = click.actions[0];
    if (first === undefined) return;
    const { reply, later } = await handlers.action({
      actionId: first.action_id,
      value: first.value,
      userId: click.user.id,
      channelId: click.channel?.id,
      messageTs: click.message?.ts,
      triggerId: click.trigger_id,
      actionTs: first.action_ts,
    });
    if (reply !== undefined) {
      options.track(
        respond({ response_type: 'ephemeral', replace_original: false, text: reply.text }).then(
          () => undefined,
          (error: unknown) => logger.warn({ err: error }, 'could not send an ephemeral reply'),
        ),
      );
    }
    if (later !== undefined) options.track(later());
  });

  app.error(async (error) => {
    logger.error({ err: error }, 'bolt listener error');
  });
  return { app, requestListener };
}

export type { IncidentNumber };
