import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../logger.js';
import { BodyBudget } from './body-budget.js';

/**
 * The one HTTP server every listener of the bot mounts on (Slack's HTTP receiver, /healthz, the
 * webhooks), in production and in tests. Its bounds are what a LAN attacker meets first:
 * - headers must arrive within `headersTimeoutMs` and the whole request within
 *   `requestTimeoutMs` (Node answers 408 and closes), an idle keep-alive connection is closed
 *   after `keepAliveTimeoutMs`, headers larger than `maxHeaderBytes` get 431;
 * - at most `maxConnections` sockets, and `maxConnectionsPerAddress` from one peer address:
 *   any beyond is closed as it is accepted, before a byte of it is read (each connection's first
 *   read can hold up to 64 KiB until the next GC, so the caps also bound that memory);
 * - each route declares its largest body: a larger one is refused 413 before a byte is read;
 * - bodies are buffered only while the server-wide total stays under `maxInFlightBodyBytes`
 *   (503 otherwise, to be retried).
 * Handlers get the whole body; they never read the request stream themselves.
 */

export interface HttpLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly maxInFlightBodyBytes: number;
  readonly maxHeaderBytes: number;
  /** The longest a refused, unread request's connection stays open after the answer. */
  readonly lingerMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 512,
  maxConnectionsPerAddress: 32,
  maxInFlightBodyBytes: 8 * 1_048_576,
  maxHeaderBytes: 16 * 1024,
  lingerMs: 1000,
});

export interface HttpReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

export interface HttpRoute {
  readonly path: string;
  readonly method: string;
  /** The largest body the route takes; a larger one is refused 413 unread. 0: no body. */
  readonly maxBodyBytes: number;
  /** Checks on the request line and headers, before any body byte is read: a reply refuses it. */
  readonly screen?: (req: IncomingMessage) => HttpReply | undefined;
  /** The request with its whole body, read within the limits. */
  /** May be async: a rejection is logged and answered 500. */
  readonly handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => unknown;
}

export interface HttpServerHandle {
  readonly server: Server;
  readonly port: number;
  /** Body bytes buffered right now (tests and /healthz may report it). */
  inFlightBodyBytes(): number;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, reply: HttpReply): void {
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

export const failure = (status: number, error: string, extra: Record<string, unknown> = {}): HttpReply => ({
  status,
  body: { error, ...extra },
});

/** undefined: none declared (chunked or no body); NaN: not a length. */
function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  if (value === undefined) return undefined;
  return /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
}

type BodyRead =
  | { kind: 'ok'; body: Buffer }
  | { kind: 'too-large' }
  | { kind: 'over-budget' }
  | { kind: 'gone' };

/**
 * Reads the body within the route's limit. A declared length is taken from the budget up front;
 * a chunked body chunk by chunk. `taken` tells the caller what to give back.
 */
function readBody(
  req: IncomingMessage,
  limit: number,
  budget: BodyBudget,
  taken: { bytes: number },
): Promise<BodyRead> {
  return new Promise((resolve) => {
    const declared = declaredLength(req);
    if (declared !== undefined) {
      if (!budget.tryTake(declared)) {
        resolve({ kind: 'over-budget' });
        return;
      }
      taken.bytes = declared;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyRead) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      if (result.kind !== 'ok') chunks.length = 0;
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        finish({ kind: 'too-large' });
        return;
      }
      if (declared === undefined) {
        if (!budget.tryTake(chunk.length)) {
          finish({ kind: 'over-budget' });
          return;
        }
        taken.bytes += chunk.length;
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

export interface StartHttpServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly routes: readonly HttpRoute[];
  readonly limits?: Partial<HttpLimits>;
  readonly logger?: Logger;
  /** Told of every answer sent, refusals included (the request's path, the status code). */
  readonly onResponse?: (path: string, status: number) => void;
}

/** The request listener alone (no socket): what startHttpServer serves. */
export function createRequestListener(
  routes: readonly HttpRoute[],
  limits: HttpLimits,
  budget: BodyBudget,
  logger?: Logger,
  onResponse?: (path: string, status: number) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const log = logger?.child({ component: 'http' });

  /**
   * Answers without reading the body (or while it still streams). A body that fits the route is
   * drained and the connection kept. Anything else is not read at all: the answer carries
   * `connection: close` and the socket goes once it is flushed (at the latest after lingerMs).
   * A client still sending may then see a reset instead of the answer; a legitimate sender's
   * body is never that large.
   */
  function refuse(req: IncomingMessage, res: ServerResponse, reply: HttpReply, keep: boolean): void {
    if (reply.status >= 400) {
      log?.[reply.status === 401 || reply.status === 403 ? 'warn' : 'info'](
        { status: reply.status, error: reply.body.error, path: req.url, method: req.method },
        'request refused',
      );
    }
    sendJson(res, keep ? reply : { ...reply, headers: { ...reply.headers, connection: 'close' } });
    if (req.complete) return;
    if (keep) {
      req.resume();
      return;
    }
    // Not drained: reading an attacker's megabytes only to discard them costs memory in
    // buffers awaiting GC.
    const timer = setTimeout(() => req.socket.destroy(), limits.lingerMs);
    timer.unref();
    req.socket.once('close', () => clearTimeout(timer));
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (onResponse !== undefined) res.once('finish', () => onResponse(path, res.statusCode));
    const forPath = routes.filter((r) => r.path === path);
    const route = forPath.find((r) => r.method === req.method);
    const declared = declaredLength(req);
    // A refused body is drained (connection kept) only when it is declared and fits the route:
    // anything else closes the connection.
    const hasBody = declared !== undefined ? declared > 0 : req.headers['transfer-encoding'] !== undefined;
    const smallBody = (limit: number) => !hasBody || (declared !== undefined && declared <= limit);
    if (route === undefined) {
      const keep = smallBody(0);
      if (forPath.length === 0) refuse(req, res, failure(404, 'not found'), keep);
      else {
        const allow = forPath.map((r) => r.method).join(', ');
        refuse(req, res, { ...failure(405, `use ${allow}`), headers: { allow } }, keep);
      }
      return;
    }
    if (Number.isNaN(declared)) {
      refuse(req, res, failure(400, 'content-length is not a number'), false);
      return;
    }
    if (declared !== undefined && declared > route.maxBodyBytes) {
      refuse(req, res, failure(413, `body larger than ${route.maxBodyBytes} bytes`), false);
      return;
    }
    const screened = route.screen?.(req);
    if (screened !== undefined) {
      refuse(req, res, screened, smallBody(route.maxBodyBytes));
      return;
    }
    const taken = { bytes: 0 };
    res.once('close', () => budget.giveBack(taken.bytes));
    const read = await readBody(req, route.maxBodyBytes, budget, taken);
    switch (read.kind) {
      case 'gone':
        return;
      case 'too-large':
        refuse(req, res, failure(413, `body larger than ${route.maxBodyBytes} bytes`), false);
        return;
      case 'over-budget':
        log?.warn({ inFlight: budget.inFlightBytes, cap: budget.capBytes }, 'body budget exhausted');
        refuse(
          req,
          res,
          {
            ...failure(503, 'too many request bodies in flight; retry later'),
            headers: { 'retry-after': '1' },
          },
          false,
        );
        return;
      case 'ok':
        await route.handle(req, res, read.body);
    }
  }

  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      log?.error({ err: error, path: req.url }, 'HTTP handler failed');
      sendJson(res, failure(500, 'internal error, see the bot logs'));
    });
  };
}

/**
 * One LAN host cannot take every connection: those beyond the cap from one address are closed as
 * they are accepted. Runs after Node's own connection listener, before any read.
 */
function capConnectionsPerAddress(server: Server, cap: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > cap) {
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

/** Listens on host:port with the limits; resolves once listening. */
export async function startHttpServer(options: StartHttpServerOptions): Promise<HttpServerHandle> {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const budget = new BodyBudget(limits.maxInFlightBodyBytes);
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node enforces the two timeouts on this tick (default 30 s): a cut must come on time.
      connectionsCheckingInterval: Math.max(
        50,
        Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
      ),
    },
    createRequestListener(options.routes, limits, budget, options.logger, options.onResponse),
  );
  server.maxConnections = limits.maxConnections;
  capConnectionsPerAddress(server, limits.maxConnectionsPerAddress);
  // Backstop for a socket that goes quiet in any state the timeouts above do not cover.
  server.timeout = limits.requestTimeoutMs + limits.keepAliveTimeoutMs;
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
    inFlightBodyBytes: () => budget.inFlightBytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
