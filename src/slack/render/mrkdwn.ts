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

/** Slack reads &, < and > as control characters in mrkdwn and plain text. */
export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Cuts text to `max` characters, saying how much was left out. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const note = `…and ${text.length - max} more characters`;
  const keep = Math.max(0, max - note.length - 1);
  return `${text.slice(0, keep)}\n${note}`.slice(0, max);
}

/** A code block that cannot be broken out of by the text inside it. */
export function codeBlock(text: string, max: number = LIMITS.sectionText): string {
  const body = escapeText(text.replaceAll('```', "'''")).trimEnd() || '(no output)';
  return `\`\`\`${clip(body, max - 8)}\`\`\``;
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
