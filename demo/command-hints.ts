import type { CommandHint } from './web/api-types.js';

/** "`/okome check &lt;x&gt;` — what" → { usage: "/okome check <x>", help: "what" }. */
export function commandHints(lines: readonly string[]): CommandHint[] {
  const plain = (s: string) => s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  return lines.flatMap((line) => {
    const m = /^`([^`]+)`\s*—\s*(.*)$/.exec(line);
    return m?.[1] === undefined ? [] : [{ usage: plain(m[1]), help: plain(m[2] ?? '').replaceAll('`', '') }];
  });
}
