import type { SlackEmulator } from './slack-emulator/index.js';

/**
 * The mention and link injection corpus, and the judge of what the bot made Slack show: every
 * corpus string appears only escaped, and the only `<…>` are the bot's own mentions and links.
 */

export const CORPUS = [
  '<!channel>',
  '<!here>',
  '<!everyone>',
  '<@U0VICTIM>',
  '<#C0VICTIM>',
  '<https://x|y>',
  '&lt;',
  '<!channel>'.repeat(1024),
  'ünïcødé ☃ 😀 ‮<!here|here>',
] as const;

/** Each corpus string behind a marker, so its every appearance can be found and judged. */
export const marked = (i: number) => `Q${i}[${CORPUS[i]}]`;
export const slackEscaped = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** Every string a message shows: `text` of the message, of its blocks and of their elements. */
function shownTexts(value: unknown, key = '', out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (key === 'text' || key === 'alt_text' || key === 'fallback') out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) shownTexts(v, key === 'blocks' || key === 'elements' ? '' : key, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) shownTexts(v, k, out);
  }
  return out;
}

/**
 * What the bot may write between < and >: mentions of users and channels (never the corpus's
 * victims) and permalinks from the emulated Slack.
 */
const OWN_TOKEN =
  /^(?:@(?!U0VICTIM)[UW][A-Z0-9]+|#(?!C0VICTIM)C[A-Z0-9]+|https:\/\/emulated\.slack\.test\/[^|<>\s]+\|thread)$/;
/^(?:@U0(?:APPROVER1|APPROVER2|REQUEST)|#C0(?:OPS|INCIDENT)|https:\/\/emulated\.slack\.test\/[^|<>\s]+\|thread)$/;

/** Problems of one shown string; empty when every outside value in it is escaped. */
export function problemsOf(text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(/<([^<>]*)>/g)) {
    if (!OWN_TOKEN.test(m[1] ?? '')) problems.push(`raw <${(m[1] ?? '').slice(0, 40)}>`);
  }
  const stray = text.replaceAll(/<([^<>]*)>/g, '');
  if (/[<>]/.test(stray)) problems.push('a stray < or >');
  if (/&(?!amp;|lt;|gt;)/.test(text)) problems.push('an & that starts no entity');
  for (let i = 0; i < CORPUS.length; i += 1) {
    const expected = `${slackEscaped(CORPUS[i] ?? '')}]`.toLowerCase();
    const lower = text.toLowerCase();
    const marker = `q${i}[`;
    for (let at = lower.indexOf(marker); at >= 0; at = lower.indexOf(marker, at + 1)) {
      const after = lower.slice(at + marker.length);
      let n = 0;
      while (n < after.length && n < expected.length && after[n] === expected[n]) n += 1;
      if (n === expected.length) continue;
      // Clipped or sliced: the cut must fall between characters of the raw text, never inside
      // an entity (an escaped `&lt;` cut to `&l`, or a raw `&lt;` where `&amp;lt;` belongs).
      const kept = after.slice(0, n);
      if (/&[a-z]*$/.test(kept)) problems.push(`corpus ${i} cut inside an entity or not escaped`);
    }
  }
  return problems;
}

export interface Shown {
  readonly where: string;
  readonly text: string;
}

/** Every text the bot made Slack show, from every surface the emulator records. */
export function everythingShown(emu: SlackEmulator): Shown[] {
  const out: Shown[] = [];
  for (const call of emu.calls) {
    if (!['chat.postMessage', 'chat.update', 'chat.postEphemeral'].includes(call.method)) continue;
    for (const text of shownTexts(call.params)) out.push({ where: call.method, text });
  }
  for (const r of emu.responses)
    for (const text of shownTexts(r.body)) out.push({ where: 'response_url', text });
  for (const e of emu.envelopes) {
    for (const text of shownTexts(e.ack?.payload ?? {})) out.push({ where: `ack of ${e.type}`, text });
  }
  return out;
}

/** Every problem of every text the bot made Slack show, with where it was shown. */
export function injectionProblems(emu: SlackEmulator): string[] {
  return everythingShown(emu).flatMap((s) =>
    problemsOf(s.text).map((p) => `${s.where}: ${p}: ${s.text.slice(0, 160)}`),
  );
}
