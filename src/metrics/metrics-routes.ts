import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, sameSecret } from '../http/bearer.js';
import { failure, type HttpRoute, sendJson } from '../http/http-server.js';
import type { Logger } from '../logger.js';
import type { BotMetrics } from './bot-metrics.js';

export const METRICS_PATH = '/metrics';
export const READY_PATH = '/readyz';

export interface MetricsRouteOptions {
  readonly metrics: BotMetrics;
  /** OKOME_METRICS_TOKEN: when set, a scrape must send it as `Authorization: Bearer`. */
  readonly token: string | undefined;
  /** On the shared server a token is required (503 without one); on its own bind it is optional. */
  readonly requireToken: boolean;
  readonly logger: Logger;
}

/** GET /metrics: the Prometheus text format. */
export function createMetricsRoute(options: MetricsRouteOptions): HttpRoute {
  const { metrics, token } = options;
  const log = options.logger.child({ component: 'metrics' });
  return {
    path: METRICS_PATH,
    method: 'GET',
    maxBodyBytes: 0,
    screen(req) {
      if (token === undefined) {
        return options.requireToken
          ? failure(
              503,
              'metrics disabled: set OKOME_METRICS_TOKEN, or metrics.listen for a bind of their own',
            )
          : undefined;
      }
      const given = bearerToken(req);
      if (given === undefined) return failure(401, 'missing Authorization: Bearer <token>');
      return sameSecret(given, token) ? undefined : failure(401, 'bad token');
    },
    async handle(_req: IncomingMessage, res: ServerResponse) {
      try {
        const { contentType, text } = await metrics.render();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(text);
      } catch (error) {
        // A store read failed: the scrape fails (up == 0) rather than report stale numbers.
        log.error({ err: error }, 'metrics unavailable');
        sendJson(res, failure(500, 'metrics unavailable, see the bot logs'));
      }
    },
  };
}

export interface Readiness {
  /** Socket Mode: the socket is connected; HTTP mode: Slack's requests are being received. */
  readonly slack: boolean;
  /** The store took a write just now. */
  readonly store: boolean;
}

/**
 * GET /readyz: 200 when Slack is connected and the store writable, else 503 with which is not.
 * /healthz stays liveness: the process answers.
 */
export function createReadyRoute(check: () => Promise<Readiness>, logger: Logger): HttpRoute {
  const log = logger.child({ component: 'readyz' });
  return {
    path: READY_PATH,
    method: 'GET',
    maxBodyBytes: 0,
    async handle(_req: IncomingMessage, res: ServerResponse) {
      let ready: Readiness;
      try {
        ready = await check();
      } catch (error) {
        log.warn({ err: error }, 'readiness check failed');
        ready = { slack: false, store: false };
      }
      const ok = ready.slack && ready.store;
      sendJson(res, { status: ok ? 200 : 503, body: { ready: ok, ...ready } });
    },
  };
}
