import { Agent, type Dispatcher } from 'undici';
import type { SilenceMatcher } from '../domain/silence.js';
import { ErrorCode, OkomeError } from '../errors.js';
import { describeHttpError } from '../probes/http-probe.js';

/**
 * Alertmanager's API v2, the two calls silences need, over undici with a deadline per call.
 * Errors are user-safe OkomeErrors that say what happened (they are shown in the thread).
 */

export type AlertmanagerAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'basic'; readonly user: string; readonly password: string };

export interface NewSilence {
  readonly matchers: readonly SilenceMatcher[];
  readonly startsAt: number;
  readonly endsAt: number;
  readonly createdBy: string;
  readonly comment: string;
}

/** The port the silence use case calls (tests may give another). */
export interface AlertmanagerSilences {
  /** POST /api/v2/silences; returns the silence's id. */
  createSilence(silence: NewSilence): Promise<string>;
  /** DELETE /api/v2/silence/{id}; an already expired silence counts as done. */
  expireSilence(id: string): Promise<void>;
}

export interface AlertmanagerClientOptions {
  /** Alertmanager's base URL, e.g. http://127.0.0.1:9093 (a path prefix is kept). */
  readonly url: string;
  readonly auth: AlertmanagerAuth;
  readonly timeoutMs: number;
}

const MAX_ERROR_BODY = 512;

function authorization(auth: AlertmanagerAuth): Record<string, string> {
  switch (auth.kind) {
    case 'bearer':
      return { authorization: `Bearer ${auth.token}` };
    case 'basic':
      return {
        authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`,
      };
    default:
      return {};
  }
}

async function readText(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  let text = '';
  for await (const chunk of body) {
    if (text.length < max) text += Buffer.from(chunk as Uint8Array).toString('utf8');
  }
  return text.slice(0, max);
}

export class AlertmanagerClient implements AlertmanagerSilences {
  private readonly agent: Agent;
  private readonly base: URL;

  constructor(private readonly options: AlertmanagerClientOptions) {
    this.agent = new Agent({
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
  }

  async createSilence(silence: NewSilence): Promise<string> {
    const body = JSON.stringify({
      matchers: silence.matchers,
      startsAt: new Date(silence.startsAt).toISOString(),
      endsAt: new Date(silence.endsAt).toISOString(),
      createdBy: silence.createdBy,
      comment: silence.comment,
    });
    const { status, text } = await this.call('POST', 'api/v2/silences', body);
    if (status !== 200) throw this.rejected('create a silence', status, text);
    let id: unknown;
    try {
      id = (JSON.parse(text) as { silenceID?: unknown }).silenceID;
    } catch {
      id = undefined;
    }
    if (typeof id !== 'string' || id === '')
      throw new OkomeError(ErrorCode.AlertmanagerRejected, 'Alertmanager answered without a silence id', {
        userSafe: true,
      });
    return id;
  }

  async expireSilence(id: string): Promise<void> {
    const { status, text } = await this.call('DELETE', `api/v2/silence/${encodeURIComponent(id)}`);
    // 200: expired now. Alertmanager answers 500 "silence … already expired" for one already over.
    if (status === 200 || /already expired/i.test(text)) return;
    throw this.rejected('expire the silence', status, text);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call(
    method: 'POST' | 'DELETE',
    path: string,
    body?: string,
  ): Promise<{ status: number; text: string }> {
    const url = new URL(path, this.base);
    const { timeoutMs } = this.options;
    try {
      const res = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...authorization(this.options.auth),
        },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.statusCode, text: await readText(res.body, MAX_ERROR_BODY) };
    } catch (error) {
      const { reason } = describeHttpError(error, timeoutMs);
      throw new OkomeError(
        ErrorCode.AlertmanagerUnavailable,
        `Alertmanager at ${this.base.origin} did not answer: ${reason}`,
        { userSafe: true, cause: error },
      );
    }
  }

  private rejected(what: string, status: number, text: string): OkomeError {
    const detail = text.trim().replace(/\s+/g, ' ').slice(0, 200);
    return new OkomeError(
      status >= 500 ? ErrorCode.AlertmanagerUnavailable : ErrorCode.AlertmanagerRejected,
      `Alertmanager could not ${what}: HTTP ${status}${detail === '' ? '' : ` ${detail}`}`,
      { userSafe: true },
    );
  }
}
