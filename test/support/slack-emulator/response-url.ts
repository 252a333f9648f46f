// response_url: one per slash command or interaction, accepting JSON posts. What a post does
// follows Slack: replace/delete the message clicked, post in channel, or show an ephemeral.

import { z } from 'zod';
import { checkMessage, isRecord } from './block-kit-limits.js';
import type { FaultKind } from './faults.js';
import type { MessageStore } from './message-store.js';
import type { Workspace } from './payloads.js';
import { mediaType } from './request-body.js';

export interface ResponseOrigin {
  readonly kind: 'slash_command' | 'block_actions';
  readonly channelId: string;
  readonly userId: string;
  /** The message the interaction came from, which replace_original / delete_original act on. */
  readonly messageTs: string | undefined;
}

export interface RecordedResponse {
  readonly id: string;
  readonly url: string;
  readonly time: number;
  readonly status: number;
  /** The JSON posted: text, blocks, response_type, replace_original, delete_original, thread_ts. */
  readonly body: Record<string, unknown>;
  readonly origin: ResponseOrigin | undefined;
  /** Slack's error code when refused. */
  readonly error: string | undefined;
  readonly errors: readonly string[];
  readonly fault: FaultKind | undefined;
}

export interface ResponseReply {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly error: string | undefined;
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

const booleanish = z.union([z.boolean(), z.enum(['true', 'false'])]).transform((value) => {
  return value === true || value === 'true';
});

const ResponseBody = z.looseObject({
  text: z.string().optional(),
  blocks: z.unknown().optional(),
  response_type: z.enum(['in_channel', 'ephemeral']).optional(),
  replace_original: booleanish.optional(),
  delete_original: booleanish.optional(),
  thread_ts: z.string().optional(),
});

/** The posted object, or undefined unless it is JSON (as Bolt's respond() sends). */
export function parseResponseBody(
  contentType: string | undefined,
  raw: string,
): Record<string, unknown> | undefined {
  if (mediaType(contentType) !== 'application/json') return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export class ResponseUrls {
  readonly #origins = new Map<string, ResponseOrigin>();
  #next = 1;

  issue(origin: ResponseOrigin): string {
    const id = `R${this.#next}`;
    this.#next += 1;
    this.#origins.set(id, origin);
    return id;
  }

  origin(id: string): ResponseOrigin | undefined {
    return this.#origins.get(id);
  }

  /** Applies one post to `id`'s response_url; `body` is undefined when it was not a JSON object. */
  answer(
    id: string,
    body: Record<string, unknown> | undefined,
    store: MessageStore,
    workspace: Workspace,
    nowMs: number,
  ): ResponseReply {
    const origin = this.#origins.get(id);
    if (origin === undefined) return refuse(404, 'expired_url', []);
    if (body === undefined) {
      return refuse(400, 'invalid_payload', [
        'response_url takes a JSON object (content-type application/json)',
      ]);
    }
    const parsed = ResponseBody.safeParse(body);
    if (!parsed.success) {
      return refuse(
        400,
        'invalid_payload',
        parsed.error.issues.map((issue) => `${issue.message} [json-pointer:/${issue.path.join('/')}]`),
      );
    }
    const { text, blocks, response_type, replace_original, delete_original, thread_ts } = parsed.data;
    if (delete_original === true) {
      if (origin.messageTs !== undefined) store.delete(origin.channelId, origin.messageTs);
      return accept([]);
    }
    if (text === undefined && blocks === undefined) return refuse(400, 'no_text', []);
    const verdict = checkMessage({ text, blocks });
    if (!verdict.ok) return refuse(400, verdict.error, verdict.errors);
    const blockList = Array.isArray(blocks) ? blocks : undefined;
    if (replace_original === true && origin.messageTs !== undefined) {
      const updated = store.update(origin.channelId, origin.messageTs, { text, blocks: blockList });
      return updated === undefined ? refuse(404, 'message_not_found', []) : accept(verdict.warnings);
    }
    if (response_type === 'in_channel') {
      store.post(
        {
          channel: origin.channelId,
          text: text ?? '',
          blocks: blockList,
          threadTs: thread_ts,
          replyBroadcast: false,
          user: workspace.botUserId,
          botId: workspace.botId,
          metadata: undefined,
        },
        nowMs,
      );
      return accept(verdict.warnings);
    }
    store.postEphemeral(
      {
        channel: origin.channelId,
        user: origin.userId,
        text: text ?? '',
        blocks: blockList,
        threadTs: thread_ts,
        via: 'response_url',
      },
      nowMs,
    );
    return accept(verdict.warnings);
  }
}

function accept(warnings: readonly string[]): ResponseReply {
  return { status: 200, body: 'ok', contentType: 'text/plain', error: undefined, errors: [], warnings };
}

/** Non-2xx so that Bolt's respond() throws, as it does against Slack. */
function refuse(status: number, error: string, errors: readonly string[]): ResponseReply {
  return {
    status,
    body: JSON.stringify({ ok: false, error, errors }),
    contentType: 'application/json',
    error,
    errors,
    warnings: [],
  };
}
