import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Agent, type Dispatcher, errors } from 'undici';
import { ErrorCode, OkomeError } from '../errors.js';
import { describeNetworkError } from './deadline.js';
import type { HttpProbe, HttpRequest, HttpResult } from './ports.js';

export interface HttpProbeOptions {
  /** Ceiling on TCP connect for every request (each request's own deadline still applies). Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  readonly logger?: Logger;
}

/** The failure and whether it is a timeout, from anything undici or the socket threw. */
export function describeHttpError(error: unknown, timeoutMs: number): { timeout: boolean; reason: string } {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return { timeout: true, reason: `timeout after ${timeoutMs} ms` };
  }
  if (error instanceof errors.ConnectTimeoutError) return { timeout: true, reason: 'connect timeout' };
  if (error instanceof errors.HeadersTimeoutError) {
    return { timeout: true, reason: `no response headers within ${timeoutMs} ms` };
  }
  if (error instanceof errors.BodyTimeoutError)
    return { timeout: true, reason: `body stalled for ${timeoutMs} ms` };
  if (error instanceof errors.SocketError)
    return { timeout: false, reason: 'connection closed by the server' };
  if (error instanceof errors.HTTPParserError) return { timeout: false, reason: 'invalid HTTP response' };
  if (error instanceof errors.InvalidArgumentError)
    return { timeout: false, reason: `invalid request: ${error.message}` };
  // undici can nest the socket error (`cause`) or several (AggregateError for multi-address hosts).
  if (error instanceof AggregateError && error.errors.length > 0)
    return describeHttpError(error.errors[0], timeoutMs);
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  if (code === 'ETIMEDOUT') return { timeout: true, reason: 'connect timeout' };
  if (code === undefined && error instanceof Error && error.cause !== undefined) {
    return describeHttpError(error.cause, timeoutMs);
  }
  return { timeout: false, reason: describeNetworkError(error) };
}

function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/**
 * HttpProbe over a dedicated undici Agent (its own sockets, short timeouts). Redirects are not
 * followed: the status is what the probe reports. `latencyMs` runs from the call to the end of
 * the body read (headers only for HEAD), as curl's time_total.
 */
export class UndiciHttpProbe implements HttpProbe {
  private readonly agent: Agent;
  private readonly log: Logger | undefined;

  constructor(options: HttpProbeOptions = {}) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 2000 },
      // Per-request values below replace these; they only bound a request made without them.
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 10_000,
    });
    this.log = options.logger?.child({ component: 'http-probe' });
  }

  async request(request: HttpRequest): Promise<HttpResult> {
    const { timeoutMs } = request;
    const started = performance.now();
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await this.agent.request({
        ...splitUrl(request.url),
        method: request.method,
        headers: request.headers ?? {},
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      let body: string;
      try {
        body = await readCapped(res.body, request.method === 'GET' ? (request.maxBodyBytes ?? 0) : 0);
      } finally {
        // Drained, the socket goes back to the pool; past the limit undici destroys it instead.
        // Either way nothing keeps it busy. Errors here do not matter: the result is complete.
        void res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      }
      return {
        status: res.statusCode,
        latencyMs: performance.now() - started,
        headers: flattenHeaders(res.headers),
        body,
      };
    } catch (error) {
      const { timeout, reason } = describeHttpError(error, timeoutMs);
      this.log?.debug({ url: request.url, method: request.method, reason }, 'http probe failed');
      throw new OkomeError(
        timeout ? ErrorCode.ProbeTimeout : ErrorCode.ProbeFailed,
        `${request.method} ${request.url}: ${reason}`,
        { userSafe: true, cause: error },
      );
    }
  }

  async close(): Promise<void> {
    // destroy, not close: close waits for requests in flight, and a hung port's request waits
    // out its timeout after the report that no longer needs it.
    await this.agent.destroy();
  }
}

function splitUrl(url: string): { origin: string; path: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new errors.InvalidArgumentError(`not a URL: ${url}`, { cause: error });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new errors.InvalidArgumentError(`not an http(s) URL: ${url}`);
  }
  return { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
}

/** Reads up to `max` bytes of the body and leaves the rest unread (the caller dumps it). */
function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  if (max <= 0) return Promise.resolve('');
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<string>((resolve, reject) => {
    const done = (): void => {
      body.off('data', onData);
      body.off('end', done);
      body.off('error', onError);
      body.pause();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: unknown): void => {
      body.off('data', onData);
      body.off('end', done);
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      const piece = chunk.subarray(0, max - size);
      chunks.push(piece);
      size += piece.length;
      if (size >= max) done();
    };
    body.on('data', onData);
    body.once('end', done);
    body.once('error', onError);
  });
}
