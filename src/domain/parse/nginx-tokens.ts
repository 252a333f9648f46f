/**
 * A tokenizer for nginx configuration text, following ngx_conf_read_token: words, quoted
 * strings, `{`, `}` and `;`; `#` starts a comment only where a word could start; `${var}` keeps
 * its braces inside the word; a backslash escapes the next character. One pass, linear time.
 */

export type NginxToken =
  | { readonly type: 'word'; readonly text: string; readonly quoted: boolean; readonly line: number }
  | { readonly type: '{' | '}' | ';'; readonly line: number };

export type NginxTokens =
  | { readonly ok: true; readonly tokens: readonly NginxToken[] }
  | { readonly ok: false; readonly error: string; readonly line: number };

const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';

export function tokenizeNginx(text: string): NginxTokens {
  const tokens: NginxToken[] = [];
  const n = text.length;
  let line = 1;
  let i = 0;
  while (i < n) {
    const ch = text[i];
    if (ch === '\n') {
      line++;
      i++;
    } else if (isSpace(ch)) {
      i++;
    } else if (ch === '#') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? n : end;
    } else if (ch === '{' || ch === '}' || ch === ';') {
      tokens.push({ type: ch, line });
      i++;
    } else if (ch === '"' || ch === "'") {
      const start = line;
      // Copy runs between escapes with slice: per-character concatenation is slow on 1 MB dumps.
      let raw = '';
      let from = i + 1;
      let j = from;
      let closed = false;
      while (j < n) {
        const c = text[j];
        if (c === '\\' && j + 1 < n) {
          raw += text.slice(from, j) + unescapeChar(text[j + 1] ?? '');
          if (text[j + 1] === '\n') line++;
          j += 2;
          from = j;
        } else if (c === ch) {
          closed = true;
          break;
        } else {
          if (c === '\n') line++;
          j++;
        }
      }
      if (!closed) return { ok: false, error: `unterminated ${ch} string`, line: start };
      tokens.push({ type: 'word', text: raw + text.slice(from, j), quoted: true, line: start });
      i = j + 1;
    } else {
      let raw = '';
      let from = i;
      let j = i;
      while (j < n) {
        const c = text[j];
        if (c === '\\' && j + 1 < n) {
          raw += text.slice(from, j) + unescapeChar(text[j + 1] ?? '');
          j += 2;
          from = j;
        } else if (isSpace(c) || c === ';' || (c === '{' && text[j - 1] !== '$')) {
          break;
        } else {
          j++;
        }
      }
      tokens.push({ type: 'word', text: raw + text.slice(from, j), quoted: false, line });
      i = j;
    }
  }
  return { ok: true, tokens };
}

// nginx turns these escapes into characters and keeps any other backslash pair as written.
function unescapeChar(c: string): string {
  switch (c) {
    case '"':
    case "'":
    case '\\':
      return c;
    case 't':
      return '\t';
    case 'r':
      return '\r';
    case 'n':
      return '\n';
    default:
      return `\\${c}`;
  }
}
