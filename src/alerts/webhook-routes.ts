import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, sameSecret } from '../http/bearer.js';
import { failure as fail, type HttpReply, type HttpRoute, sendJson } from '../http/http-server.js';
import type { Logger } from '../logger.js';
import { type Alert, type AlertBatch, alertDedupeKey, parseAlertmanager } from './alertmanager.js';
import {
  type HookSecrets,
  hookEnabled,
  KEEPALIVED_MAX_BODY_BYTES,
  type KeepalivedEvent,
  type MarkSeen,
  type ScreenedHook,
  screenKeepalivedHook,
  verifyKeepalivedBody,
} from './keepalived-hook.js';

/**
 * Transport only: the webhook endpoints as routes of the bounded HTTP server (src/http). They
 * screen headers before the body is read, validate, dedupe and record (one transaction), answer
 * 202 and hand the result to a callback on the next turn of the event loop; what an alert means
 * for incidents is the callbacks' business.
 *
 * Status codes: 202 accepted; 400 not JSON; 401 authentication; 403 unknown node; 405 method;
 * 413 too large; 415 not application/json; 422 wrong shape; 503 endpoint disabled (no secret
 * configured) or the store failing to record the request (a retry may succeed); 500 only for a
 * bug here.
 */

export const ALERTMANAGER_PATH = '/alerts/alertmanager';
export const KEEPALIVED_PATH = '/hooks/keepalived';

export interface AlertDelivery {
  /** How many alerts of the request were seen before (redelivery, HA peer): not in `batch.alerts`. */
  readonly duplicates: number;
  /** Those alerts, for "last seen" bookkeeping only: never open or post anything for them. */
  readonly repeated: readonly Alert[];
  readonly receivedAt: number;
}

interface CommonOptions {
  /** SeenEventStore.markSeen; may throw (the request is then answered 503, to be retried). */
  readonly markSeen: MarkSeen;
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Runs the callback after the response; default setImmediate. */
  readonly defer?: (fn: () => void) => void;
  /** Serve the route at another path (tests mount variants side by side). */
  readonly path?: string;
}

export interface AlertmanagerRouteOptions extends CommonOptions {
  readonly maxBodyBytes: number;
  /** OKOME_ALERTMANAGER_TOKEN; undefined disables the endpoint (503). */
  readonly token: string | undefined;
  /**
   * Store work committed in the same transaction as the seen marks, before the reply: what the
   * alerts mean for incidents (alert rows, timeline, follow-ups). It may throw: everything rolls
   * back and the request is answered 503, so Alertmanager redelivers it and nothing a 2xx
   * answered is lost. `batch.alerts` holds only alerts never seen before.
   */
  readonly record?: (batch: AlertBatch, delivery: AlertDelivery) => Promise<void>;
  /**
   * Called once per request that carried alerts, after the 202 is written: `batch.alerts` holds
   * only alerts never seen before (possibly none, when all were duplicates).
   */
  readonly onAlerts: (batch: AlertBatch, delivery: AlertDelivery) => void | Promise<void>;
  /**
   * Store.atomically: marks a batch's alerts seen and records them all or none, so a store
   * failure midway (503, Alertmanager retries) cannot leave some alerts marked but not recorded.
   */
  readonly atomically?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** A refused hook request, for the audit trail (unknown nodes). */
export interface HookRefusalRecord {
  readonly node: string;
  readonly status: number;
  readonly error: string;
  readonly remoteAddress: string | undefined;
  readonly at: number;
}

export interface KeepalivedRouteOptions extends CommonOptions {
  /** OKOME_KEEPALIVED_SECRET and the per-node secrets; none at all disables the endpoint (503). */
  readonly secrets: HookSecrets;
  /** The configured node names: a notify from any other is refused 403 unread. */
  readonly knownNodes: ReadonlySet<string>;
  readonly replayWindowSec: number;
  /**
   * Store work committed in the same transaction as the request's seen mark, before the reply
   * (the event kept until handled). It may throw: both roll back and the request is answered
   * 503, so the notify script's retry brings it again.
   */
  readonly record?: (event: KeepalivedEvent) => Promise<void>;
  /** Store.atomically, for `record` and the seen mark together. */
  readonly atomically?: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly onKeepalived: (event: KeepalivedEvent) => void | Promise<void>;
  /** A notify from a node the configuration does not name (audited by the caller). */
  readonly onUnknownNode?: (refusal: HookRefusalRecord) => void;
}

type Reply = HttpReply;

class StoreUnavailable extends Error {}

/** application/json, optionally with charset=utf-8 (JSON is UTF-8 by definition, RFC 8259). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

function parseJson(body: Buffer): { ok: true; json: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) };
  } catch (error) {
    return { ok: false, error: `invalid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Runs the callback after the response; a throw or rejection is logged, never surfaced. */
function deliverLater(options: CommonOptions, what: string, callback: () => void | Promise<void>): void {
  const defer = options.defer ?? setImmediate;
  const report = (error: unknown) => options.logger?.error({ err: error }, `${what} callback failed`);
  defer(() => {
    try {
      const result = callback();
      if (result instanceof Promise) result.catch(report);
    } catch (error) {
      report(error);
    }
  });
}

interface Pipeline<T> {
  readonly name: string;
  readonly path: string;
  readonly maxBodyBytes: number;
  /** undefined = endpoint disabled, with this message. */
  readonly disabledMessage: string | undefined;
  /** Checked before the body is read (token, signed headers); undefined = fine. */
  readonly preAuth?: (req: IncomingMessage, now: number) => Reply | undefined;
  /** Body → reply and, when accepted, the work to hand over. */
  readonly process: (req: IncomingMessage, body: Buffer, now: number) => Promise<{ reply: Reply; work?: T }>;
  readonly deliver: (work: T) => void | Promise<void>;
}

function makeRoute<T>(options: CommonOptions, pipeline: Pipeline<T>): HttpRoute {
  const now = options.now ?? Date.now;
  const log = options.logger?.child({ webhook: pipeline.name });
  const respond = (res: ServerResponse, reply: Reply) => {
    if (reply.status >= 400) {
      log?.[reply.status === 401 || reply.status === 403 ? 'warn' : 'info'](
        { status: reply.status, error: reply.body.error },
        'webhook request refused',
      );
    }
    sendJson(res, reply);
  };
  return {
    path: options.path ?? pipeline.path,
    method: 'POST',
    maxBodyBytes: pipeline.maxBodyBytes,
    screen(req) {
      if (pipeline.disabledMessage !== undefined) return fail(503, pipeline.disabledMessage);
      const denied = pipeline.preAuth?.(req, now());
      if (denied !== undefined) return denied;
      if (!isJson(req.headers['content-type'])) {
        return {
          ...fail(415, 'content-type must be application/json'),
          headers: { accept: 'application/json' },
        };
      }
      return undefined;
    },
    async handle(req, res, body) {
      let outcome: { reply: Reply; work?: T };
      try {
        outcome = await pipeline.process(req, body, now());
      } catch (error) {
        if (!(error instanceof StoreUnavailable)) throw error;
        log?.error({ err: error.cause }, `${error.message}: answered 503`);
        respond(res, fail(503, 'temporarily unable to record the request; retry later'));
        return;
      }
      respond(res, outcome.reply);
      const { work } = outcome;
      if (work !== undefined) deliverLater(options, pipeline.name, () => pipeline.deliver(work));
    },
  };
}

function guardedMarkSeen(markSeen: MarkSeen): MarkSeen {
  return async (key, at) => {
    try {
      return await markSeen(key, at);
    } catch (error) {
      throw new StoreUnavailable('markSeen failed', { cause: error });
    }
  };
}

/** POST /alerts/alertmanager: Bearer token, Alertmanager v4 payload, per-alert dedupe. */
export function createAlertmanagerRoute(options: AlertmanagerRouteOptions): HttpRoute {
  const { token, markSeen } = options;
  const atomically = options.atomically ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
  const accept = async (batch: AlertBatch, now: number) => {
    try {
      return await atomically(async () => {
        const fresh: Alert[] = [];
        const repeated: Alert[] = [];
        for (const alert of batch.alerts) {
          ((await markSeen(alertDedupeKey(batch.groupKey, alert), now)) ? fresh : repeated).push(alert);
        }
        const accepted = {
          batch: { ...batch, alerts: fresh },
          delivery: { duplicates: repeated.length, repeated, receivedAt: now },
        };
        if (batch.alerts.length > 0) await options.record?.(accepted.batch, accepted.delivery);
        return accepted;
      });
    } catch (error) {
      throw new StoreUnavailable('recording the alerts failed', { cause: error });
    }
  };
  return makeRoute<{ batch: AlertBatch; delivery: AlertDelivery }>(options, {
    name: 'alertmanager',
    path: ALERTMANAGER_PATH,
    maxBodyBytes: options.maxBodyBytes,
    disabledMessage:
      token === undefined ? 'alert endpoint disabled: set OKOME_ALERTMANAGER_TOKEN' : undefined,
    preAuth: (req) => {
      const given = bearerToken(req);
      if (given === undefined) return fail(401, 'missing Authorization: Bearer <token>');
      return token !== undefined && sameSecret(given, token) ? undefined : fail(401, 'bad token');
    },
    process: async (_req, body, now) => {
      const json = parseJson(body);
      if (!json.ok) return { reply: fail(400, json.error) };
      const parsed = parseAlertmanager(json.json);
      if (!parsed.ok) {
        return { reply: fail(422, 'not an Alertmanager v4 payload', { problems: parsed.problems }) };
      }
      const accepted = await accept(parsed.batch, now);
      const reply = {
        status: 202,
        body: { accepted: accepted.batch.alerts.length, duplicates: accepted.delivery.duplicates },
      };
      if (parsed.batch.alerts.length === 0) return { reply };
      return { reply, work: accepted };
    },
    deliver: ({ batch, delivery }) => options.onAlerts(batch, delivery),
  });
}

/**
 * POST /hooks/keepalived: HMAC-signed state transition from contrib/keepalived-notify. The
 * signed headers (timestamp, node) are screened before the body is read; the body, at most
 * 4 KiB, is then verified with that node's secret.
 */
export function createKeepalivedRoute(options: KeepalivedRouteOptions): HttpRoute {
  const markSeen = guardedMarkSeen(options.markSeen);
  const atomically = options.atomically ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
  const verifyAndRecord = async (input: Parameters<typeof verifyKeepalivedBody>[0]) => {
    try {
      return await atomically(async () => {
        const verdict = await verifyKeepalivedBody(input);
        if (verdict.ok && !verdict.duplicate) await options.record?.(verdict.event);
        return verdict;
      });
    } catch (error) {
      if (error instanceof StoreUnavailable) throw error;
      throw new StoreUnavailable('recording the transition failed', { cause: error });
    }
  };
  const screen = (req: IncomingMessage, now: number): ScreenedHook | Reply => {
    const screened = screenKeepalivedHook({
      headers: req.headers,
      nowMs: now,
      replayWindowSec: options.replayWindowSec,
      knownNodes: options.knownNodes,
      secrets: options.secrets,
    });
    if (screened.ok) return screened;
    if (screened.unknownNode !== undefined) {
      options.onUnknownNode?.({
        node: screened.unknownNode,
        status: screened.status,
        error: screened.error,
        remoteAddress: req.socket.remoteAddress,
        at: now,
      });
    }
    return fail(screened.status, screened.error);
  };
  return makeRoute<KeepalivedEvent>(options, {
    name: 'keepalived',
    path: KEEPALIVED_PATH,
    maxBodyBytes: KEEPALIVED_MAX_BODY_BYTES,
    disabledMessage: hookEnabled(options.secrets)
      ? undefined
      : 'keepalived hook disabled: set OKOME_KEEPALIVED_SECRET or per-node secrets',
    preAuth: (req, now) => {
      const screened = screen(req, now);
      return 'ok' in screened ? undefined : screened;
    },
    process: async (req, body, now) => {
      // Screened again: the window may have closed while the body arrived.
      const screened = screen(req, now);
      if (!('ok' in screened)) return { reply: screened };
      const verdict = await verifyAndRecord({ screened, rawBody: body, nowMs: now, markSeen });
      if (!verdict.ok) {
        const extra = verdict.problems === undefined ? {} : { problems: verdict.problems };
        return { reply: fail(verdict.status, verdict.error, extra) };
      }
      // The same signed request again: the notify script posts it to every replica (the store's
      // seen mark makes one of them handle it), so a second copy is a success, not a refusal.
      if (verdict.duplicate) return { reply: { status: 202, body: { accepted: 0, duplicates: 1 } } };
      return { reply: { status: 202, body: { accepted: 1, duplicates: 0 } }, work: verdict.event };
    },
    deliver: (event) => options.onKeepalived(event),
  });
}
