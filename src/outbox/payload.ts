import { z } from 'zod';
import type { Blocks } from './slack-gateway.js';

/** What one outbox row says: the message content plus the post-only delivery options. */
export interface MessagePayload {
  readonly text: string;
  readonly blocks?: Blocks;
  /** Post in a thread only: also show the reply in the channel. */
  readonly reply_broadcast?: boolean;
  readonly unfurl_links?: boolean;
  readonly unfurl_media?: boolean;
}

const payloadSchema = z.object({
  text: z.string(),
  blocks: z.array(z.looseObject({})).optional(),
  reply_broadcast: z.boolean().optional(),
  unfurl_links: z.boolean().optional(),
  unfurl_media: z.boolean().optional(),
});

export function encodePayload(payload: MessagePayload): string {
  return JSON.stringify(payload);
}

/** Parses a stored payload; undefined when the row is unreadable (it is then failed, not retried). */
export function decodePayload(json: string): MessagePayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  const parsed = payloadSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const { text, blocks, reply_broadcast, unfurl_links, unfurl_media } = parsed.data;
  return {
    text,
    ...(blocks === undefined ? {} : { blocks }),
    ...(reply_broadcast === undefined ? {} : { reply_broadcast }),
    ...(unfurl_links === undefined ? {} : { unfurl_links }),
    ...(unfurl_media === undefined ? {} : { unfurl_media }),
  };
}

/**
 * Folds a later update into a pending post or update of the same message. Fields the later
 * payload sets win; fields it omits are kept, so the merged row shows what the sequence of
 * calls would have shown and a post keeps its delivery options (reply_broadcast, unfurl…).
 */
export function mergePayload(earlier: MessagePayload, later: MessagePayload): MessagePayload {
  return { ...earlier, ...later };
}
