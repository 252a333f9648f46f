import { emojiFor } from './emoji.js';

/**
 * Slack's mrkdwn, parsed to a small tree the page turns into DOM nodes. Pure: no DOM, so it is
 * unit-tested in node. Message text comes from alerts and command output: nothing here ever
 * yields markup, only nodes whose strings the page sets as text.
 */

export type Inline =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'bold' | 'italic' | 'strike'; readonly children: readonly Inline[] }
  | { readonly type: 'code'; readonly children: readonly Inline[] }
  /** `url` is always one safeUrl() accepted. */
  | { readonly type: 'link'; readonly url: string; readonly text: string }
  | { readonly type: 'user'; readonly id: string; readonly label: string | undefined }
  | { readonly type: 'channel'; readonly id: string; readonly label: string | undefined }
  | { readonly type: 'usergroup'; readonly id: string; readonly label: string | undefined }
  | { readonly type: 'broadcast'; readonly range: 'here' | 'channel' | 'everyone' }
  | { readonly type: 'date'; readonly text: string }
  | { readonly type: 'emoji'; readonly name: string; readonly unicode: string | undefined }
  | { readonly type: 'break' }
  /** Something the page cannot show (a rich-text element it does not know): shown as a placeholder. */
  | { readonly type: 'unsupported'; readonly what: string };

export type Block =
  | { readonly type: 'paragraph'; readonly children: readonly Inline[] }
  | { readonly type: 'preformatted'; readonly children: readonly Inline[] }
  | { readonly type: 'quote'; readonly children: readonly Inline[] }
  | {
      readonly type: 'list';
      readonly style: 'bullet' | 'ordered';
      readonly indent: number;
      readonly offset: number;
      readonly items: readonly (readonly Inline[])[];
    }
  | { readonly type: 'unsupported'; readonly what: string };

const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/** The URL when a link to it is harmless (http, https, mailto), else undefined: no javascript:, data:, file:. */
export function safeUrl(url: string): string | undefined {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(trimmed)?.[1]?.toLowerCase();
  return scheme !== undefined && SAFE_SCHEMES.has(scheme) ? trimmed : undefined;
}

/** Slack escapes only these three; any other `&…;` is literal text. One pass, so `&amp;lt;` is `&lt;`. */
export function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt);/g, (_, name: string) =>
    name === 'amp' ? '&' : name === 'lt' ? '<' : '>',
  );
}

const WORD = /[\p{L}\p{N}]/u;
const isWordChar = (c: string | undefined): boolean => c !== undefined && WORD.test(c);
const isSpace = (c: string | undefined): boolean => c !== undefined && /\s/.test(c);
const MARKERS: Readonly<Record<string, 'bold' | 'italic' | 'strike'>> = {
  '*': 'bold',
  _: 'italic',
  '~': 'strike',
};
const EMOJI_CODE = /^:([a-z0-9_+'-]+):/;
const BARE_URL = /^https?:\/\/[^\s<>`]+/;

/** mrkdwn text (as in a text object or a message's `text`) → blocks. */
export function parseMrkdwn(text: string): Block[] {
  const blocks: Block[] = [];
  let rest = text;
  while (rest !== '') {
    const open = rest.indexOf('```');
    const close = open < 0 ? -1 : rest.indexOf('```', open + 3);
    if (close < 0) {
      blocks.push(...parseLines(rest));
      break;
    }
    // The newline between text and a fence belongs to neither.
    blocks.push(...parseLines(rest.slice(0, open).replace(/\n$/, '')));
    const body = rest
      .slice(open + 3, close)
      .replace(/^\n/, '')
      .replace(/\n$/, '');
    blocks.push({ type: 'preformatted', children: parseLiteral(body) });
    rest = rest.slice(close + 3).replace(/^\n/, '');
  }
  return blocks;
}

/** Lines outside code blocks: runs of `>` lines are quotes, the rest paragraphs; `>>>` quotes all that follows. */
function parseLines(text: string): Block[] {
  if (text === '') return [];
  const blocks: Block[] = [];
  let run: { quote: boolean; lines: string[] } | undefined;
  const flush = () => {
    if (run === undefined) return;
    const children = joinLines(run.lines.map(parseInline));
    blocks.push({ type: run.quote ? 'quote' : 'paragraph', children });
    run = undefined;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] ?? '';
    const all = /^(?:>>>|&gt;&gt;&gt;) ?/.exec(line);
    if (all !== null) {
      flush();
      run = { quote: true, lines: [line.slice(all[0].length), ...lines.slice(i + 1)] };
      break;
    }
    const quote = /^(?:>|&gt;) ?/.exec(line);
    const quoted = quote !== null;
    if (run !== undefined && run.quote !== quoted) flush();
    run ??= { quote: quoted, lines: [] };
    run.lines.push(quoted ? line.slice(quote[0].length) : line);
  }
  flush();
  return blocks;
}

function joinLines(lines: readonly Inline[][]): Inline[] {
  const out: Inline[] = [];
  lines.forEach((line, i) => {
    if (i > 0) out.push({ type: 'break' });
    out.push(...line);
  });
  return out;
}

function pushText(out: Inline[], text: string): void {
  if (text === '') return;
  const last = out.at(-1);
  if (last?.type === 'text') out[out.length - 1] = { type: 'text', text: last.text + text };
  else out.push({ type: 'text', text });
}

/** One line of mrkdwn: formatting never spans lines in Slack. */
export function parseInline(line: string): Inline[] {
  const out: Inline[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line.charAt(i);
    if (c === '`') {
      const end = line.indexOf('`', i + 1);
      if (end > i + 1) {
        out.push({ type: 'code', children: parseLiteral(line.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    } else if (c === '<') {
      const end = line.indexOf('>', i + 1);
      const token = end < 0 ? undefined : parseAngle(line.slice(i + 1, end));
      if (token !== undefined) {
        if (token.type === 'text') pushText(out, token.text);
        else out.push(token);
        i = end + 1;
        continue;
      }
    } else if (c === '&') {
      const entity = /^&(amp|lt|gt);/.exec(line.slice(i));
      if (entity !== null) {
        pushText(out, decodeEntities(entity[0]));
        i += entity[0].length;
        continue;
      }
    } else if (c === ':') {
      const code = EMOJI_CODE.exec(line.slice(i));
      // A name needs a letter: `03:14:07` is a time, not an emoji.
      if (code?.[1] !== undefined && /[a-z]/.test(code[1])) {
        out.push({ type: 'emoji', name: code[1], unicode: emojiFor(code[1]) });
        i += code[0].length;
        continue;
      }
    } else if (MARKERS[c] !== undefined && !isWordChar(line[i - 1])) {
      const end = findCloser(line, i, c);
      if (end > 0) {
        out.push({ type: MARKERS[c], children: parseInline(line.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    } else if ((c === 'h' || c === 'H') && !isWordChar(line[i - 1])) {
      const url = BARE_URL.exec(line.slice(i))?.[0].replace(/[.,;:!?)\]'"]+$/, '');
      if (url !== undefined) {
        const decoded = decodeEntities(url);
        out.push({ type: 'link', url: decoded, text: decoded });
        i += url.length;
        continue;
      }
    }
    pushText(out, c);
    i += 1;
  }
  return out;
}

/**
 * Where a `*`, `_` or `~` opened at `open` closes: the content starts and ends with no space,
 * the closer is not inside a code span or an angle token, and no letter or digit follows it
 * (`snake_case_name` stays as it is). -1 when it does not close.
 */
function findCloser(line: string, open: number, marker: string): number {
  const first = line[open + 1];
  if (first === undefined || first === marker || isSpace(first)) return -1;
  for (let j = open + 2; j < line.length; j += 1) {
    const c = line.charAt(j);
    if (c === '`' || c === '<') {
      const end = line.indexOf(c === '`' ? '`' : '>', j + 1);
      if (end > j) j = end;
      continue;
    }
    if (c === marker && !isSpace(line[j - 1]) && !isWordChar(line[j + 1])) return j;
  }
  return -1;
}

/** Code and code blocks: entities and angle tokens are read, formatting and emoji are not. */
function parseLiteral(text: string): Inline[] {
  const out: Inline[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('<', i);
    const end = open < 0 ? -1 : text.indexOf('>', open + 1);
    const token = end < 0 ? undefined : parseAngle(text.slice(open + 1, end));
    if (token === undefined) {
      const stop = open < 0 ? text.length : open + 1;
      pushLines(out, decodeEntities(text.slice(i, stop)));
      i = stop;
      continue;
    }
    pushLines(out, decodeEntities(text.slice(i, open)));
    if (token.type === 'text') pushText(out, token.text);
    else out.push(token);
    i = end + 1;
  }
  return out;
}

function pushLines(out: Inline[], text: string): void {
  text.split('\n').forEach((part, i) => {
    if (i > 0) out.push({ type: 'break' });
    pushText(out, part);
  });
}

/**
 * The inside of `<…>`: a mention, a channel, a broadcast, a date, or a link. Anything else
 * (`<img onerror=…>` in text nobody escaped) is not a token: the caller keeps it as text.
 */
function parseAngle(inner: string): Inline | undefined {
  const bar = inner.indexOf('|');
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? undefined : decodeEntities(inner.slice(bar + 1));
  if (target.startsWith('@') && /^@[UW][A-Z0-9]+$/.test(target))
    return { type: 'user', id: target.slice(1), label };
  if (target.startsWith('#') && /^#[CGD][A-Z0-9]+$/.test(target))
    return { type: 'channel', id: target.slice(1), label };
  if (target.startsWith('!')) return parseSpecial(target, label);
  if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(target)) return undefined;
  const url = safeUrl(decodeEntities(target));
  if (url === undefined) return { type: 'text', text: label ?? decodeEntities(target) };
  return { type: 'link', url, text: label ?? url };
}

function parseSpecial(target: string, label: string | undefined): Inline | undefined {
  if (target === '!here' || target === '!channel' || target === '!everyone')
    return { type: 'broadcast', range: target.slice(1) as 'here' | 'channel' | 'everyone' };
  const group = /^!subteam\^([A-Z0-9]+)$/.exec(target);
  if (group?.[1] !== undefined) return { type: 'usergroup', id: group[1], label };
  const date = /^!date\^(\d+)\^/.exec(target);
  if (date?.[1] !== undefined) {
    const when = new Date(Number(date[1]) * 1000);
    return { type: 'date', text: label ?? (Number.isNaN(when.getTime()) ? target : when.toISOString()) };
  }
  return undefined;
}

/** A plain_text object: entities decoded, `:emoji:` read when `emoji` is true (Slack's default), nothing else. */
export function parsePlainText(text: string, emoji = true): Inline[] {
  const out: Inline[] = [];
  const decoded = decodeEntities(text);
  let i = 0;
  let from = 0;
  while (emoji && i < decoded.length) {
    const code = decoded.charAt(i) === ':' ? EMOJI_CODE.exec(decoded.slice(i)) : null;
    if (code?.[1] !== undefined && /[a-z]/.test(code[1])) {
      pushLines(out, decoded.slice(from, i));
      out.push({ type: 'emoji', name: code[1], unicode: emojiFor(code[1]) });
      i += code[0].length;
      from = i;
    } else i += 1;
  }
  pushLines(out, decoded.slice(from));
  return out;
}
