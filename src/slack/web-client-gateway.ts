import type { Block, KnownBlock } from '@slack/types';
import type { ChatPostMessageArguments, WebClient } from '@slack/web-api';
import type {
  Blocks,
  GetPermalinkArgs,
  PostEphemeralArgs,
  PostMessageArgs,
  UpdateArgs,
  UploadFileArgs,
} from '../outbox/slack-gateway.js';
import { Permanent, RateLimited, Retryable, type SlackGateway } from '../outbox/slack-gateway.js';

/**
 * The outbox's SlackGateway over @slack/web-api's WebClient.
 *
 * The WebClient MUST be constructed (by the composition root) with OUTBOX_WEB_CLIENT_OPTIONS:
 * no retries of its own and 429s rejected, because the outbox owns the retry policy. With
 * web-api's defaults a 429 pauses every call of that client and is retried internally
 * (10 times in HTTP mode, 100 when Socket Mode has rewritten the shared options), and a 500 is
 * retried for up to ~30 minutes: the outbox would see neither, could not keep per-thread order,
 * and one bad channel would stall them all. Give the outbox its own WebClient rather than
 * Bolt's `app.client`, whose options Bolt mutates.
 *
 * Errors are classified by their stable `code` string rather than `instanceof`, which breaks
 * when two copies of @slack/web-api are installed (Bolt's and ours).
 */
export const OUTBOX_WEB_CLIENT_OPTIONS = {
  retryConfig: { retries: 0 },
  rejectRateLimitedCalls: true,
} as const;

/** Platform errors (`ok:false`) that mean "Slack is struggling", not "your call is wrong". */
const RETRYABLE_PLATFORM_ERRORS: ReadonlySet<string> = new Set([
  'ratelimited',
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

/** One upload's POST of its bytes; reports are small, a slow link still gets this long. */
const UPLOAD_TIMEOUT_MS = 60_000;

export class WebClientGateway implements SlackGateway {
  constructor(
    private readonly client: WebClient,
    /** The upload POST's transport (tests may pass their own); default the global fetch. */
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  async postMessage(args: PostMessageArgs): Promise<{ ts: string }> {
    const call = {
      channel: args.channel,
      text: args.text,
      ...blocksOf(args.blocks),
      ...(args.thread_ts === undefined ? {} : { thread_ts: args.thread_ts }),
      ...(args.thread_ts === undefined || args.reply_broadcast === undefined
        ? {}
        : { reply_broadcast: args.reply_broadcast }),
      ...(args.unfurl_links === undefined ? {} : { unfurl_links: args.unfurl_links }),
      ...(args.unfurl_media === undefined ? {} : { unfurl_media: args.unfurl_media }),
    } as ChatPostMessageArguments;
    const result = await this.call(() => this.client.chat.postMessage(call));
    // ok:true without a ts cannot be retried safely (it was posted): fail the row, do not repeat it.
    if (typeof result.ts !== 'string' || result.ts === '') throw new Permanent('missing_ts');
    return { ts: result.ts };
  }

  async update(args: UpdateArgs): Promise<void> {
    await this.call(() =>
      this.client.chat.update({
        channel: args.channel,
        ts: args.ts,
        text: args.text,
        ...blocksOf(args.blocks),
      }),
    );
  }

  async postEphemeral(args: PostEphemeralArgs): Promise<void> {
    await this.call(() =>
      this.client.chat.postEphemeral({
        channel: args.channel,
        user: args.user,
        text: args.text,
        ...blocksOf(args.blocks),
      }),
    );
  }

  async getPermalink(args: GetPermalinkArgs): Promise<{ permalink: string }> {
    const result = await this.call(() =>
      this.client.chat.getPermalink({ channel: args.channel, message_ts: args.message_ts }),
    );
    if (typeof result.permalink !== 'string' || result.permalink === '') {
      throw new Permanent('missing_permalink');
    }
    return { permalink: result.permalink };
  }

  async authTest(): Promise<void> {
    await this.call(() => this.client.auth.test());
  }

  async uploadFile(args: UploadFileArgs): Promise<void> {
    const target = await this.call(() =>
      this.client.files.getUploadURLExternal({ filename: args.filename, length: args.content.byteLength }),
    );
    const url = target.upload_url;
    const id = target.file_id;
    if (typeof url !== 'string' || typeof id !== 'string') throw new Permanent('missing_upload_url');
    await this.sendBytes(url, args.content);
    await this.call(() =>
      this.client.files.completeUploadExternal({
        files: [{ id, title: args.title }],
        channel_id: args.channel,
        ...(args.thread_ts === undefined ? {} : { thread_ts: args.thread_ts }),
        ...(args.initial_comment === undefined ? {} : { initial_comment: args.initial_comment }),
      }),
    );
  }

  /**
   * The upload itself: the raw bytes POSTed to the URL Slack gave (no token: the URL is the
   * credential). 200 is success; a 4xx will not get better with the same URL, but the outbox
   * starts a retry from a fresh URL, so only a refusal of the file itself (413) is permanent.
   */
  private async sendBytes(url: string, content: Uint8Array): Promise<void> {
    let response: Response;
    try {
      response = await this.fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: content,
        signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
      });
      await response.arrayBuffer();
    } catch (error) {
      throw new Retryable(`file upload failed: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
    }
    if (response.status === 413) throw new Permanent('file_too_large');
    if (response.status !== 200) throw new Retryable(`file upload answered HTTP ${response.status}`);
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw classifySlackError(error);
    }
  }
}

/** Maps whatever the WebClient threw to the outbox's three kinds. Unknown errors are Retryable. */
export function classifySlackError(error: unknown): RateLimited | Retryable | Permanent {
  if (error instanceof RateLimited || error instanceof Retryable || error instanceof Permanent) return error;
  const fields = fieldsOf(error);
  switch (fields.code) {
    case 'slack_webapi_rate_limited_error':
      return new RateLimited(typeof fields.retryAfter === 'number' ? fields.retryAfter : 1);
    case 'slack_webapi_platform_error': {
      const slackCode = platformErrorCode(fields.data);
      return RETRYABLE_PLATFORM_ERRORS.has(slackCode)
        ? new Retryable(`Slack answered ok:false, ${slackCode}`, { cause: error })
        : new Permanent(slackCode, { cause: error });
    }
    default: {
      // slack_webapi_request_error (network, timeout), slack_webapi_http_error and anything
      // unforeseen. Slack's API answers only 200 and 429, so any other HTTP status is a proxy,
      // a load balancer or an outage, not a verdict on this call: retried. A wrong SLACK_API_URL
      // thus shows up as a growing backlog and warnings, delivered once it is fixed.
      const message = error instanceof Error ? error.message : String(error);
      return new Retryable(`Slack call failed: ${message}`, { cause: error });
    }
  }
}

function blocksOf(blocks: Blocks | undefined): { blocks?: (KnownBlock | Block)[] } {
  // The renderer builds Block Kit; the outbox stores it opaquely, so only the type changes here.
  return blocks === undefined ? {} : { blocks: [...blocks] as (KnownBlock | Block)[] };
}

function fieldsOf(error: unknown): {
  code?: unknown;
  retryAfter?: unknown;
  statusCode?: unknown;
  data?: unknown;
} {
  return typeof error === 'object' && error !== null ? error : {};
}

function platformErrorCode(data: unknown): string {
  if (typeof data === 'object' && data !== null && 'error' in data && typeof data.error === 'string')
    return data.error;
  return 'unknown_error';
}
