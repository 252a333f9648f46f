import { z } from 'zod';
import type { Blocks } from './slack-gateway.js';

/**
 * A reference to another outbox message whose permalink is only known once Slack has it. The
 * deliverer holds the row until that message is posted, asks Slack for its permalink, and
 * replaces `placeholder` everywhere in `text` and `blocks` with `<permalink|label>` (or the bare
 * URL without a label). If that message will never exist (its post failed for good, or Slack
 * cannot find it) the placeholder becomes `fallback`, else `label`, else ''.
 *
 * The referenced message must be enqueued in another queue (another thread or a top-level
 * post), or before this row in its own: a queue's head waiting on a later row of the same
 * queue would wait for ever.
 */
export interface PermalinkRef {
  readonly placeholder: string;
  /** The outbox message ref (`enqueuePost`'s return value). */
  readonly ref: string;
  readonly label?: string;
  readonly fallback?: string;
}

/** `{{permalink:REF}}`: the conventional placeholder for a message's permalink. */
export function permalinkPlaceholder(ref: string): string {
  return `{{permalink:${ref}}}`;
}

/** A link to `ref`'s message, written where `permalinkPlaceholder(ref)` appears. */
export function permalinkTo(ref: string, options: { label?: string; fallback?: string } = {}): PermalinkRef {
  return { placeholder: permalinkPlaceholder(ref), ref, ...options };
}

/** What one outbox row says: the message content plus the post-only delivery options. */
export interface MessagePayload {
  readonly text: string;
  readonly blocks?: Blocks;
  /** Permalinks of other messages, filled in at delivery (see PermalinkRef). */
  readonly links?: readonly PermalinkRef[];
  /** Post in a thread only: also show the reply in the channel. */
  readonly reply_broadcast?: boolean;
  readonly unfurl_links?: boolean;
  readonly unfurl_media?: boolean;
  /**
   * A post that skips ahead of the channel's paced queue (a failover notice: the one message
   * that must not wait behind a storm). The outbox's own flag, never sent to Slack.
   */
  readonly urgent?: boolean;
}

const permalinkRefSchema = z.object({
  placeholder: z.string().min(1),
  ref: z.string().min(1),
  label: z.string().optional(),
  fallback: z.string().optional(),
});

const payloadSchema = z.object({
  text: z.string(),
  blocks: z.array(z.looseObject({})).optional(),
  links: z.array(permalinkRefSchema).optional(),
  reply_broadcast: z.boolean().optional(),
  unfurl_links: z.boolean().optional(),
  unfurl_media: z.boolean().optional(),
  urgent: z.boolean().optional(),
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
  const { text, blocks, links, reply_broadcast, unfurl_links, unfurl_media, urgent } = parsed.data;
  return {
    text,
    ...(blocks === undefined ? {} : { blocks }),
    ...(links === undefined || links.length === 0 ? {} : { links: links.map(linkOf) }),
    ...(reply_broadcast === undefined ? {} : { reply_broadcast }),
    ...(unfurl_links === undefined ? {} : { unfurl_links }),
    ...(unfurl_media === undefined ? {} : { unfurl_media }),
    ...(urgent === undefined ? {} : { urgent }),
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

function linkOf(link: z.infer<typeof permalinkRefSchema>): PermalinkRef {
  return {
    placeholder: link.placeholder,
    ref: link.ref,
    ...(link.label === undefined ? {} : { label: link.label }),
    ...(link.fallback === undefined ? {} : { fallback: link.fallback }),
  };
}

/** Slack's mrkdwn escaping, for a URL inside `<…|…>`. */
function escapeUrl(url: string): string {
  return url.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** A URL the bot may write as a link: https, no whitespace and nothing Slack's link syntax reads. */
function linkableUrl(url: string | undefined): string | undefined {
  return url !== undefined && /^https:\/\/[^\s<>|]+$/.test(url) ? url : undefined;
}

/**
 * The payload with every link's placeholder replaced: `permalinks` maps a ref to its URL, or
 * to undefined when the message will never have one. Blocks are rewritten through JSON with
 * the replacement JSON-escaped, so no URL can break their structure.
 */
export function fillPermalinks(
  payload: MessagePayload,
  permalinks: ReadonlyMap<string, string | undefined>,
): { text: string; blocks?: Blocks } {
  let text = payload.text;
  let blocksJson = payload.blocks === undefined ? undefined : JSON.stringify(payload.blocks);
  for (const link of payload.links ?? []) {
    const url = linkableUrl(permalinks.get(link.ref));
    const value =
      url === undefined
        ? (link.fallback ?? link.label ?? '')
        : link.label === undefined
          ? url
          : `<${escapeUrl(url)}|${link.label}>`;
    text = text.replaceAll(link.placeholder, value);
    if (blocksJson !== undefined) {
      blocksJson = blocksJson.replaceAll(
        JSON.stringify(link.placeholder).slice(1, -1),
        JSON.stringify(value).slice(1, -1),
      );
    }
  }
  return blocksJson === undefined ? { text } : { text, blocks: JSON.parse(blocksJson) as Blocks };
}

/**
 * What an upload row holds: the file (UTF-8 text or base64 bytes), the comment it is shared
 * with, and the message to post instead when Slack refuses uploads (disabled, missing scope),
 * so the thread still gets the content.
 */
export interface UploadPayload {
  readonly filename: string;
  readonly title: string;
  readonly encoding: 'utf8' | 'base64';
  readonly content: string;
  readonly comment?: string;
  readonly fallback: MessagePayload;
}

const uploadSchema = z.object({
  filename: z.string().min(1).max(255),
  title: z.string().max(255),
  encoding: z.enum(['utf8', 'base64']),
  content: z.string().min(1),
  comment: z.string().optional(),
  fallback: payloadSchema,
});

export function encodeUpload(payload: UploadPayload): string {
  return JSON.stringify(payload);
}

/** Parses a stored upload row; undefined when unreadable (failed, not retried). */
export function decodeUpload(json: string): UploadPayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  const parsed = uploadSchema.safeParse(value);
  if (!parsed.success) return undefined;
  const fallback = decodePayload(JSON.stringify(parsed.data.fallback));
  if (fallback === undefined) return undefined;
  const { filename, title, encoding, content, comment } = parsed.data;
  return { filename, title, encoding, content, ...(comment === undefined ? {} : { comment }), fallback };
}

/** The file's bytes. */
export function uploadBytes(payload: UploadPayload): Uint8Array {
  return Buffer.from(payload.content, payload.encoding);
}
