import type { CheckStatus } from '../../domain/check-result.js';

/** Slack's limits that shape every message (slack-wire.md, "Block Kit limits"). */
export const LIMITS = {
  blocks: 50,
  sectionText: 3000,
  headerText: 150,
  contextElements: 10,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  messageText: 4000,
} as const;

export const STATUS_EMOJI: Record<CheckStatus, string> = {
  ok: ':white_check_mark:',
  warn: ':warning:',
  fail: ':x:',
  unreachable: ':no_entry:',
  timeout: ':hourglass:',
  unknown: ':grey_question:',
};

/**
 * The one escaping function. Slack reads &, < and > as control characters in mrkdwn and plain
 * text (`<!channel>`, `<@U…>`, `<url|label>`): every value from outside (alert labels, slash
 * text, command output, names) passes here before it reaches any text, block or fallback text.
 */
export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

const ESCAPED_LENGTH: Readonly<Record<string, number>> = { '&': 5, '<': 4, '>': 4 };

/**
 * Outside text, clipped then escaped: at most `max` characters once escaped, saying how much
 * was left out. Clipping the raw text first means no `&lt;` is ever cut in half.
 */
export function escapeClipped(text: string, max: number): string {
  const escaped = escapeText(text);
  if (escaped.length <= max) return escaped;
  // The note is at most this long; the kept text fills the rest.
  const room = Math.max(0, max - `\n…and ${text.length} more characters`.length);
  let used = 0;
  let keep = 0;
  while (keep < text.length) {
    const cost = ESCAPED_LENGTH[text.charAt(keep)] ?? 1;
    if (used + cost > room) break;
    used += cost;
    keep += 1;
  }
  keep = surrogateSafe(text, keep);
  return `${escapeText(text.slice(0, keep))}\n…and ${text.length - keep} more characters`.slice(0, max);
}

/** Never leaves half of a surrogate pair (an emoji) at the cut. */
function surrogateSafe(text: string, at: number): number {
  const code = text.charCodeAt(at - 1);
  return at > 0 && code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}

/**
 * Where bot-built mrkdwn may be cut at or before `at`: never inside an entity (`&lt;`), one of
 * the bot's own `<@U…>` / `<#C…>` / `<url|label>` tokens, or a surrogate pair.
 */
function safeCut(text: string, at: number): number {
  let cut = surrogateSafe(text, at);
  const amp = text.lastIndexOf('&', cut - 1);
  if (amp >= 0 && cut - amp < 6 && !text.slice(amp, cut).includes(';')) cut = amp;
  const open = text.lastIndexOf('<', cut - 1);
  if (open >= 0 && !text.slice(open, cut).includes('>')) cut = open;
  return cut;
}

/** Cuts bot-built mrkdwn (outside parts already escaped) to `max` characters, saying how much was left out. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `…and ${text.length - max} more characters`;
  const keep = safeCut(text, Math.max(0, max - note.length - 1));
  return `${text.slice(0, keep)}\n${note}`.slice(0, max);
}

/**
 * Outside text as inline code that stays one closed code span: a backtick inside would end the
 * span early, so it becomes a quote; too long, it is clipped inside the span and the count of
 * what was left out follows it. At most `max` characters in all.
 */
export function inlineCode(text: string, max: number = LIMITS.sectionText): string {
  const body = text.replaceAll('`', "'");
  const whole = `\`${escapeText(body)}\``;
  if (whole.length <= max) return whole;
  const note = ` (+${body.length} more characters)`;
  const clipped = escapeClipped(body, Math.max(0, max - note.length - 3));
  const kept = clipped.slice(0, Math.max(0, clipped.lastIndexOf('\n…and ')));
  const left = body.length - decodedLength(kept);
  return `\`${kept}…\` (+${left} more characters)`.slice(0, max);
}

/** How many characters of the original text an escaped prefix holds. */
function decodedLength(escaped: string): number {
  return escaped.replaceAll(/&(?:amp|lt|gt);/g, '_').length;
}

/** A code block that cannot be broken out of by the text inside it: clipped, then escaped. */
export function codeBlock(text: string, max: number = LIMITS.sectionText): string {
  const body = text.replaceAll('```', "'''").trimEnd() || '(no output)';
  return `\`\`\`${escapeClipped(body, max - 6)}\`\`\``;
}

const USER_ID = /^[UW][A-Z0-9]{1,20}$/;
const CHANNEL_ID = /^[CGD][A-Z0-9]{1,20}$/;

/** The bot's own mention of a user: only a well-formed user ID becomes `<@U…>`. */
export function mentionUser(user: string): string {
  if (user === 'bot') return 'the bot';
  return USER_ID.test(user) ? `<@${user}>` : escapeText(user);
}

/** The bot's own link to a channel: only a well-formed channel ID becomes `<#C…>`. */
export function channelLink(channel: string): string {
  return CHANNEL_ID.test(channel) ? `<#${channel}>` : escapeText(channel);
}

/** Chunks long text into pieces that each fit one section. */
export function chunk(text: string, size: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > size) {
    const cut = rest.lastIndexOf('\n', size);
    const at = cut > size / 2 ? cut : size;
    out.push(rest.slice(0, at));
    rest = rest.slice(at).replace(/^\n/, '');
  }
  if (rest !== '' || out.length === 0) out.push(rest);
  return out;
}
