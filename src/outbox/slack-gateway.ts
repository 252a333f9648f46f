import { ErrorCode, OkomeError } from '../errors.js';

/**
 * The narrow port the outbox delivers through. Implementations do no retrying of their own
 * and classify every failure as one of the three errors below; anything else thrown is
 * treated as Retryable.
 */
export interface SlackGateway {
  postMessage(args: PostMessageArgs): Promise<{ ts: string }>;
  update(args: UpdateArgs): Promise<void>;
  postEphemeral(args: PostEphemeralArgs): Promise<void>;
  /** `chat.getPermalink`: the URL of a posted message (a thread root links to its thread). */
  getPermalink(args: GetPermalinkArgs): Promise<{ permalink: string }>;
  /** `auth.test`: resolves while the token works (a refused token is a Permanent error). */
  authTest(): Promise<void>;
  /**
   * Slack's external upload, all three steps each time (a retry starts again):
   * `files.getUploadURLExternal`, the bytes POSTed to the URL it gave, then
   * `files.completeUploadExternal`, which shares the file in the channel (a thread with thread_ts).
   */
  uploadFile(args: UploadFileArgs): Promise<void>;
}

export interface UploadFileArgs {
  readonly channel: string;
  readonly thread_ts?: string;
  readonly filename: string;
  readonly title: string;
  readonly content: Uint8Array;
  /** The message the file is shared with. */
  readonly initial_comment?: string;
}

export interface GetPermalinkArgs {
  readonly channel: string;
  readonly message_ts: string;
}

/** Block Kit blocks, rendered elsewhere; the outbox only stores and forwards them. */
export type Blocks = readonly object[];

export interface PostMessageArgs {
  readonly channel: string;
  readonly text: string;
  readonly blocks?: Blocks;
  readonly thread_ts?: string;
  readonly reply_broadcast?: boolean;
  readonly unfurl_links?: boolean;
  readonly unfurl_media?: boolean;
}

export interface UpdateArgs {
  readonly channel: string;
  readonly ts: string;
  readonly text: string;
  readonly blocks?: Blocks;
}

export interface PostEphemeralArgs {
  readonly channel: string;
  readonly user: string;
  readonly text: string;
  readonly blocks?: Blocks;
}

/** HTTP 429: the channel's queues pause for Retry-After seconds (plus jitter), then retry. */
export class RateLimited extends OkomeError {
  constructor(readonly retryAfterSec: number) {
    super(ErrorCode.SlackRateLimited, `Slack rate limit: retry after ${retryAfterSec} s`);
    this.name = 'RateLimited';
  }
}

/** 5xx, network errors, timeouts, Slack's internal errors: retried with backoff, forever. */
export class Retryable extends OkomeError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.SlackUnavailable, message, options);
    this.name = 'Retryable';
  }
}

/** Slack refused the call for good (`ok:false`): the row is marked failed with `slackCode`. */
export class Permanent extends OkomeError {
  constructor(
    readonly slackCode: string,
    options: { cause?: unknown } = {},
  ) {
    super(ErrorCode.SlackRejected, `Slack refused the call: ${slackCode}`, options);
    this.name = 'Permanent';
  }
}
