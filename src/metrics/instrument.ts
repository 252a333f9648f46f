import type { Diagnostics } from '../diagnostics/diagnose.js';
import type { HttpRoute } from '../http/http-server.js';
import { Permanent, RateLimited, type SlackGateway } from '../outbox/slack-gateway.js';
import type { BotMetrics, SlackCallResult } from './bot-metrics.js';

/**
 * The counters' one owner each: every Slack call goes through the gateway, every diagnosis
 * through Diagnostics.run, so wrapping them counts each event once, wherever it came from,
 * without threading a metrics object through the use cases.
 */

function resultOf(error: unknown): SlackCallResult {
  if (error instanceof RateLimited) return 'rate_limited';
  if (error instanceof Permanent) return 'failed';
  // The deliverer retries anything else (Retryable or unclassified).
  return 'retry';
}

/** Counts the outbox's Slack calls by operation and result (429s and retries included). */
export function instrumentGateway(gateway: SlackGateway, metrics: BotMetrics): SlackGateway {
  async function counted<T>(op: Parameters<BotMetrics['slackCall']>[0], call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      metrics.slackCall(op, 'ok');
      return result;
    } catch (error) {
      metrics.slackCall(op, resultOf(error));
      throw error;
    }
  }
  return {
    postMessage: (args) => counted('post', () => gateway.postMessage(args)),
    update: (args) => counted('update', () => gateway.update(args)),
    postEphemeral: (args) => counted('ephemeral', () => gateway.postEphemeral(args)),
    getPermalink: (args) => counted('permalink', () => gateway.getPermalink(args)),
    authTest: () => counted('auth', () => gateway.authTest()),
    uploadFile: (args) => counted('upload', () => gateway.uploadFile(args)),
  };
}

const JUDGED_FINE = new Set(['ok', 'warn']);

/** Observes each diagnosis: its duration by scope, and every check that failed or could not judge. */
export function instrumentDiagnostics(diagnostics: Diagnostics, metrics: BotMetrics): Diagnostics {
  return {
    count: (scope) => diagnostics.count(scope),
    targets: () => diagnostics.targets(),
    primeRedisWindow: () => diagnostics.primeRedisWindow(),
    recovery: (incident, seen, since) => diagnostics.recovery(incident, seen, since),
    async run(scope, onProgress) {
      const report = await diagnostics.run(scope, onProgress);
      metrics.statusRun(report.kind, report.durationMs);
      for (const check of report.checks) {
        if (!JUDGED_FINE.has(check.status)) metrics.checkFailed(check.check, check.status);
      }
      return report;
    },
  };
}

/**
 * Counts every answer of the HTTP server by route and status code: the route's path when one
 * matched, else "other" (an attacker's paths must not become label values).
 */
export function httpResponseObserver(
  routes: readonly Pick<HttpRoute, 'path'>[],
  metrics: BotMetrics,
): (path: string, status: number) => void {
  const known = new Set(routes.map((r) => r.path));
  return (path, status) => metrics.httpResponse(known.has(path) ? path : 'other', status);
}
