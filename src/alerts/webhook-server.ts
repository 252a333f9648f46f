import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import { type Alert, type AlertBatch, alertDedupeKey, parseAlertmanager } from './alertmanager.js';
import { type KeepalivedEvent, type MarkSeen, verifyKeepalivedHook } from './keepalived-hook.js';

/**
 * Transport only: the webhook endpoints as plain node handlers. They validate, dedupe, answer
 * 202 at once and hand the result to a callback on the next turn of the event loop; what an
 * alert means for incidents is the callback's business.
 *
 * Status codes: 202 accepted; 400 not JSON; 401 authentication; 405 method; 413 too large;
 * 415 not application/json; 422 wrong shape; 503 endpoint disabled (no secret configured) or
 * the seen-event store failing (a retry may succeed); 500 only for a bug here.
 */

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Same shape as the lead's Route in slack/bolt-runtime.ts and Bolt's customRoutes. */
export interface WebhookRoute {
  readonly path: string;
  readonly method: string;
  readonly handler: Handler;
}

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
  readonly maxBodyBytes: number;
  /** SeenEventStore.markSeen; may throw (the request is then answered 503, to be retried). */
  readonly markSeen: MarkSeen;
  readonly logger?: Logger;
  readonly now?: () => number;
  /** Runs the callback after the response; default setImmediate. */
  readonly defer?: (fn: () => void) => void;
  /** How long to drain a refused oversized body before closing the connection (default 1000 ms). */
  readonly lingerMs?: number;
}

export interface AlertmanagerHandlerOptions extends CommonOptions {
  /** OKOME_ALERTMANAGER_TOKEN; undefined disables the endpoint (503). */
  readonly token: string | undefined;
  /**
   * Called once per request that carried alerts, after the 202 is written: `batch.alerts` holds
   * only alerts never seen before (possibly none, when all were duplicates).
   */
  readonly onAlerts: (batch: AlertBatch, delivery: AlertDelivery) => void | Promise<void>;
  /**
   * Store.atomically: marks a batch's alerts seen all or none, so a store failure midway (503,
   * Alertmanager retries) cannot leave some alerts marked but never handed over.
   */
  readonly atomically?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export interface KeepalivedHandlerOptions extends CommonOptions {
  /** OKOME_KEEPALIVED_SECRET; undefined disables the endpoint (503). */
  readonly secret: string | undefined;
  readonly replayWindowSec: number;
  readonly onKeepalived: (event: KeepalivedEvent) => void | Promise<void>;
}

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

class StoreUnavailable extends Error {}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.writableEnded) return;
  const text = `${JSON.stringify(reply.body)}\n`;
  res.writeHead(reply.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...reply.headers,
  });
  res.end(text);
}

const fail = (status: number, error: string, extra: Record<string, unknown> = {}): Reply => ({
  status,
  body: { error, ...extra },
});

/** application/json, optionally with charset=utf-8 (JSON is UTF-8 by definition, RFC 8259). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || /^charset="?utf-8"?$/.test(p));
}

type BodyResult = { kind: 'ok'; body: Buffer } | { kind: 'too-large' } | { kind: 'gone' };

/** Reads the body, counting bytes as they stream; past the limit it stops buffering at once. */
function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      resolve({ kind: 'too-large' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        finish({ kind: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ kind: 'ok', body: Buffer.concat(chunks, size) });
    req.on('data', onData);
    req.on('end', onEnd);
    req.once('error', () => finish({ kind: 'gone' }));
    req.once('close', () => finish({ kind: 'gone' }));
  });
}

/**
 * Answers before the body is read (or while it still streams). A body declared within the limit
 * is drained and the connection kept. Otherwise the connection is closed, but only after
 * draining (discarding) for a short while: closing a socket with unread data makes the kernel
 * send RST, and the client would see "connection reset" instead of our answer.
 */
function refuseEarly(
  req: IncomingMessage,
  res: ServerResponse,
  reply: Reply,
  options: { limit: number; lingerMs: number; overflowed: boolean },
): void {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  const bounded = !options.overflowed && declared <= options.limit;
  send(res, bounded ? reply : { ...reply, headers: { ...reply.headers, connection: 'close' } });
  if (req.complete) return;
  req.resume();
  if (bounded) return;
  const timer = setTimeout(() => req.socket.destroy(), options.lingerMs);
  timer.unref();
  req.socket.once('close', () => clearTimeout(timer));
}

function parseJson(body: Buffer): { ok: true; json: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) };
  } catch (error) {
    return { ok: false, error: `invalid JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Constant-time: both sides are hashed to equal-length digests first. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1];
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
  /** undefined = endpoint disabled, with this message. */
  readonly disabledMessage: string | undefined;
  /** Checked before the body is read (the Bearer token); undefined = fine. */
  readonly preAuth?: (req: IncomingMessage) => Reply | undefined;
  /** Body → reply and, when accepted, the work to hand over. */
  readonly process: (req: IncomingMessage, body: Buffer, now: number) => Promise<{ reply: Reply; work?: T }>;
  readonly deliver: (work: T) => void | Promise<void>;
}

function makeHandler<T>(options: CommonOptions, pipeline: Pipeline<T>): Handler {
  const now = options.now ?? Date.now;
  const log = options.logger?.child({ webhook: pipeline.name });
  const logRefusal = (reply: Reply) => {
    if (reply.status < 400) return;
    log?.[reply.status === 401 ? 'warn' : 'info'](
      { status: reply.status, error: reply.body.error },
      'webhook request refused',
    );
  };
  const respond = (res: ServerResponse, reply: Reply) => {
    logRefusal(reply);
    send(res, reply);
  };
  const refuse = (req: IncomingMessage, res: ServerResponse, reply: Reply, overflowed = false) => {
    logRefusal(reply);
    refuseEarly(req, res, reply, {
      limit: options.maxBodyBytes,
      lingerMs: options.lingerMs ?? 1000,
      overflowed,
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      refuse(req, res, { ...fail(405, 'use POST'), headers: { allow: 'POST' } });
      return;
    }
    if (pipeline.disabledMessage !== undefined) {
      refuse(req, res, fail(503, pipeline.disabledMessage));
      return;
    }
    const denied = pipeline.preAuth?.(req);
    if (denied !== undefined) {
      refuse(req, res, denied);
      return;
    }
    if (!isJson(req.headers['content-type'])) {
      refuse(req, res, {
        ...fail(415, 'content-type must be application/json'),
        headers: { accept: 'application/json' },
      });
      return;
    }
    const read = await readBody(req, options.maxBodyBytes);
    if (read.kind === 'gone') return;
    if (read.kind === 'too-large') {
      refuse(req, res, fail(413, `body larger than ${options.maxBodyBytes} bytes`), true);
      return;
    }
    const { reply, work } = await pipeline.process(req, read.body, now());
    respond(res, reply);
    if (work !== undefined) deliverLater(options, pipeline.name, () => pipeline.deliver(work));
  }

  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof StoreUnavailable) {
        log?.error({ err: error.cause }, 'seen-event store failed');
        respond(res, fail(503, 'temporarily unable to record the request; retry later'));
      } else {
        log?.error({ err: error }, 'webhook handler failed');
        respond(res, fail(500, 'internal error, see the bot logs'));
      }
    });
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
export function createAlertmanagerHandler(options: AlertmanagerHandlerOptions): Handler {
  const { token, markSeen } = options;
  const atomically = options.atomically ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
  const partition = async (batch: AlertBatch, now: number) => {
    try {
      return await atomically(async () => {
        const fresh: Alert[] = [];
        const repeated: Alert[] = [];
        for (const alert of batch.alerts) {
          ((await markSeen(alertDedupeKey(batch.groupKey, alert), now)) ? fresh : repeated).push(alert);
        }
        return { fresh, repeated };
      });
    } catch (error) {
      throw new StoreUnavailable('markSeen failed', { cause: error });
    }
  };
  return makeHandler<{ batch: AlertBatch; delivery: AlertDelivery }>(options, {
    name: 'alertmanager',
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
      const { batch } = parsed;
      const { fresh, repeated } = await partition(batch, now);
      const reply = { status: 202, body: { accepted: fresh.length, duplicates: repeated.length } };
      if (batch.alerts.length === 0) return { reply };
      return {
        reply,
        work: {
          batch: { ...batch, alerts: fresh },
          delivery: { duplicates: repeated.length, repeated, receivedAt: now },
        },
      };
    },
    deliver: ({ batch, delivery }) => options.onAlerts(batch, delivery),
  });
}

/** POST /hooks/keepalived: HMAC-signed state transition from contrib/keepalived-notify. */
export function createKeepalivedHandler(options: KeepalivedHandlerOptions): Handler {
  const { secret } = options;
  const markSeen = guardedMarkSeen(options.markSeen);
  return makeHandler<KeepalivedEvent>(options, {
    name: 'keepalived',
    disabledMessage:
      secret === undefined ? 'keepalived hook disabled: set OKOME_KEEPALIVED_SECRET' : undefined,
    process: async (req, body, now) => {
      const verdict = await verifyKeepalivedHook({
        headers: req.headers,
        rawBody: body,
        secret: secret ?? '',
        nowMs: now,
        replayWindowSec: options.replayWindowSec,
        markSeen,
      });
      if (!verdict.ok) {
        const extra = verdict.problems === undefined ? {} : { problems: verdict.problems };
        return { reply: fail(verdict.status, verdict.error, extra) };
      }
      return { reply: { status: 202, body: { accepted: 1, duplicates: 0 } }, work: verdict.event };
    },
    deliver: (event) => options.onKeepalived(event),
  });
}

/** The two webhook routes, ready for Bolt's customRoutes or routeRequest. */
export function webhookRoutes(handlers: { alertmanager: Handler; keepalived: Handler }): WebhookRoute[] {
  return [
    { path: ALERTMANAGER_PATH, method: 'POST', handler: handlers.alertmanager },
    { path: KEEPALIVED_PATH, method: 'POST', handler: handlers.keepalived },
  ];
}

/** Exact-path router: unknown path 404, known path with another method 405 (with Allow). */
export function routeRequest(routes: readonly WebhookRoute[]): Handler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const forPath = routes.filter((r) => r.path === path);
    const route = forPath.find((r) => r.method === req.method);
    if (route !== undefined) {
      route.handler(req, res);
      return;
    }
    req.resume();
    if (forPath.length === 0) send(res, fail(404, 'not found'));
    else {
      send(res, {
        ...fail(405, `use ${forPath.map((r) => r.method).join(' or ')}`),
        headers: { allow: forPath.map((r) => r.method).join(', ') },
      });
    }
  };
}

export interface WebhookServer {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** A small server for Socket Mode (no Bolt HTTP receiver): the routes, nothing else. */
export async function createWebhookServer(options: {
  port: number;
  host: string;
  routes: readonly WebhookRoute[];
}): Promise<WebhookServer> {
  const server = createServer(routeRequest(options.routes));
  // Slow-loris bounds: a webhook is small and sent at once.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo | null)?.port ?? options.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
