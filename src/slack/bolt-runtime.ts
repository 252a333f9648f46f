import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebClient } from '@slack/web-api';
import type { Logger } from '../logger.js';
import type { SlackGateway } from '../outbox/slack-gateway.js';
import { createBoltApp, type SlackHandlers, type SlackMode } from './bolt-app.js';
import { OUTBOX_WEB_CLIENT_OPTIONS, WebClientGateway } from './web-client-gateway.js';

export interface Route {
  readonly path: string;
  readonly method: string;
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface BoltHandle {
  readonly httpPort: number | undefined;
  /** Stops receiving Slack requests (the socket closes or the port stops listening). */
  stopReceiving(): Promise<void>;
  close(): Promise<void>;
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

export interface StartBoltOptions {
  readonly mode: SlackMode;
  readonly slackApiUrl: string | undefined;
  readonly logger: Logger;
  readonly handlers: SlackHandlers;
  readonly routes: readonly Route[];
  readonly track: (work: Promise<void>) => void;
  /** Socket Mode has no HTTP receiver: the routes get a small server of their own here. */
  readonly healthPort: number;
  readonly healthHost: string;
}

export async function startBolt(options: StartBoltOptions): Promise<BoltHandle> {
  const app = createBoltApp(options);
  // auth.test: a wrong token fails here, at start-up, with Slack's own error.
  await app.init();
  if (options.mode.kind === 'http') {
    const server = (await app.start({ port: options.mode.port, host: options.mode.host })) as Server;
    const port = (server.address() as AddressInfo | null)?.port;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await app.stop();
    };
    return { httpPort: port, stopReceiving: stop, close: stop };
  }
  await app.start();
  const routes = new Map(options.routes.map((r) => [`${r.method} ${r.path}`, r.handler]));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const handler = routes.get(`${req.method ?? 'GET'} ${path}`);
    if (handler === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.healthPort, options.healthHost, () => resolve());
  });
  let receiving = true;
  return {
    httpPort: (server.address() as AddressInfo | null)?.port,
    async stopReceiving() {
      if (!receiving) return;
      receiving = false;
      await app.stop();
    },
    async close() {
      if (receiving) {
        receiving = false;
        await app.stop();
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
