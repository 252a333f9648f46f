/**
 * What every parser in this folder returns when the text is not what it expects. Parsers never
 * throw: command output crosses a trust boundary (a node may be half-broken, output may be cut
 * at the byte cap), and a clear reason is worth more to an operator than a stack trace.
 */
export interface Unknown {
  readonly kind: 'unknown';
  readonly reason: string;
}

export function unknown(reason: string): Unknown {
  return { kind: 'unknown', reason };
}

/** Lines of command output, accepting CRLF; a final newline does not make an empty last line. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A short, escaped quotation of input for a reason: control characters and binary stay readable. */
export function excerpt(text: string, max = 60): string {
  const cut = text.length > max;
  return JSON.stringify(cut ? text.slice(0, max) : text) + (cut ? '…' : '');
}

/** A non-negative integer written in decimal digits only, within the safe range; else null. */
export function parseCount(text: string): number | null {
  if (!/^\d{1,16}$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}
