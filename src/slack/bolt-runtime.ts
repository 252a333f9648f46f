import { ErrorCode as WebApiErrorCode, WebClient } from '@slack/web-api';
import { ErrorCode, OkomeError } from '../errors.js';
import { failure, type HttpRoute, sendJson } from '../http/http-server.js';
import type { Logger } from '../logger.js';
import type { SlackGateway } from '../outbox/slack-gateway.js';
import {
  createBoltApp,
  SLACK_EVENTS_MAX_BODY_BYTES,
  SLACK_EVENTS_PATH,
  type SlackHandlers,
  type SlackMode,
} from './bolt-app.js';
import { OUTBOX_WEB_CLIENT_OPTIONS, WebClientGateway } from './web-client-gateway.js';

export interface BoltHandle {
  /** HTTP mode: Slack's route, to mount on the bot's HTTP server; Socket Mode: none. */
  readonly routes: readonly HttpRoute[];
  /** Stops receiving Slack requests (the socket closes; HTTP mode answers 503, Slack retries). */
  stopReceiving(): Promise<void>;
  close(): Promise<void>;
  /** For /readyz: Socket Mode's socket is connected; HTTP mode: Slack's requests are taken. */
  connected(): boolean;
}

interface SocketEvents {
  on(event: string, listener: () => void): unknown;
}

/** A Web API client that fails fast: the outbox owns retries and pacing. */
export function createSlackGateway(options: { botToken: string; slackApiUrl: string | undefined }): {
  gateway: SlackGateway;
  client: WebClient;
} {
  const client = new WebClient(options.botToken, {
    ...OUTBOX_WEB_CLIENT_OPTIONS,
    ...(options.slackApiUrl === undefined ? {} : { slackApiUrl: options.slackApiUrl }),
    timeout: 10_000,
  });
  return { gateway: new WebClientGateway(client), client };
}

/** A user group's members (usergroups.users.list), for who may approve. */
export async function usergroupMembers(client: WebClient, group: string): Promise<readonly string[]> {
  const r = await client.usergroups.users.list({ usergroup: group });
  return r.users ?? [];
}

/**
 * A Slack user's name (users.info): the real name, else the handle; the user id when Slack does
 * not say (a missing scope, a deleted user, Slack down), so callers always have something.
 */
export async function userName(client: WebClient, user: string): Promise<string> {
  try {
    const r = await client.users.info({ user });
    const name = r.user?.real_name || r.user?.name;
    return name === undefined || name === '' ? user : name;
  } catch {
    return user;
  }
}

export interface StartBoltOptions {
  readonly mode: SlackMode;
  readonly slackApiUrl: string | undefined;
  readonly logger: Logger;
  readonly handlers: SlackHandlers;
  readonly track: (work: Promise<void>) => void;
}

/** Connects (Socket Mode) or readies Slack's HTTP route; the caller's HTTP server serves it. */
export async function startBolt(options: StartBoltOptions): Promise<BoltHandle> {
  const { app, requestListener } = createBoltApp(options);
  // auth.test: a wrong token fails here, at start-up, with Slack's own error.
  await unreachableNamed(app.init(), options.slackApiUrl);
  if (requestListener !== undefined) {
    let receiving = true;
    const route: HttpRoute = {
      path: SLACK_EVENTS_PATH,
      method: 'POST',
      maxBodyBytes: SLACK_EVENTS_MAX_BODY_BYTES,
      screen: () =>
        receiving ? undefined : { ...failure(503, 'okome is restarting'), headers: { 'retry-after': '5' } },
      handle: (req, res, body) => {
        if (!receiving) {
          sendJson(res, failure(503, 'okome is restarting'));
          return;
        }
        requestListener(req, res, body);
      },
    };
    const stop = async () => {
      receiving = false;
    };
    return { routes: [route], stopReceiving: stop, close: stop, connected: () => receiving };
  }
  await unreachableNamed(app.start(), options.slackApiUrl);
  let receiving = true;
  // start() resolves once connected; the socket-mode client says when that changes.
  let connected = true;
  // Bolt keeps its receiver private; the receiver's SocketModeClient and its connection
  // events ('connected', 'reconnecting', 'disconnected') are @slack/socket-mode's public API.
  const socketClient = (app as unknown as { receiver?: { client?: SocketEvents } }).receiver?.client;
  socketClient?.on('connected', () => {
    connected = true;
  });
  for (const lost of ['reconnecting', 'disconnected'])
    socketClient?.on(lost, () => {
      connected = false;
    });
  const stop = async () => {
    if (!receiving) return;
    receiving = false;
    await app.stop();
  };
  return { routes: [], stopReceiving: stop, close: stop, connected: () => receiving && connected };
}

/** Slack's default Web API address; SLACK_API_URL replaces it (tests, proxies). */
export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/';

/**
 * A start-up call that could not reach Slack at all (DNS, refused, TLS, timeout) becomes
 * OKOME_SLACK_UNAVAILABLE naming the URL: "fetch failed" alone does not say where it went.
 * Slack's own refusals (invalid_auth…) pass through unchanged.
 */
async function unreachableNamed<T>(call: Promise<T>, slackApiUrl: string | undefined): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const e = error as { code?: unknown; original?: unknown };
    if (e.code !== WebApiErrorCode.RequestError) throw error;
    const url = slackApiUrl ?? DEFAULT_SLACK_API_URL;
    const original = e.original as
      | { message?: unknown; cause?: { message?: unknown; code?: unknown } }
      | undefined;
    const cause = [original?.message, original?.cause?.code ?? original?.cause?.message]
      .filter((part) => typeof part === 'string' && part !== '')
      .join(': ');
    throw new OkomeError(
      ErrorCode.SlackUnavailable,
      `could not reach Slack at ${url}${cause === '' ? '' : ` (${cause})`}. To resolve, check this host's network, DNS and proxy, or SLACK_API_URL.`,
      { userSafe: true, cause: error },
    );
  }
}
