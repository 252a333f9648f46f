import { type NginxToken, tokenizeNginx } from './nginx-tokens.js';
import { excerpt, type Unknown, unknown } from './result.js';

export interface NginxDirective {
  readonly name: string;
  readonly args: readonly string[];
  /** The directives inside `{ … }`; null for a simple directive ending in `;`. */
  readonly block: readonly NginxDirective[] | null;
  readonly file: string;
  readonly line: number;
}

export interface NginxConfigFile {
  readonly path: string;
  readonly directives: readonly NginxDirective[];
}

export interface NginxDump {
  readonly kind: 'dump';
  /** In the order nginx -T printed them: the main file first, then every file it included. */
  readonly files: readonly NginxConfigFile[];
}

export type NginxDumpResult = NginxDump | Unknown;

const FILE_HEADER = /^# configuration file (.+):\r?$/;
/** Stands in for the path when the text is one bare file rather than an `nginx -T` dump. */
export const BARE_CONFIG = '(configuration text)';

/**
 * Reads `nginx -T`: the text of every configuration file, each after a
 * `# configuration file PATH:` line, parsed into a directive tree per file. An `include` stays
 * an `include` here (see nginx-includes.ts): nginx prints included files separately, once each.
 * Text before the first header (nginx's "syntax is ok" lines, if stderr was merged) is ignored.
 */
export function parseNginxDump(text: string): NginxDumpResult {
  const sections = splitSections(text);
  if (sections.length === 0) return unknown('nginx -T printed no configuration');
  const files: NginxConfigFile[] = [];
  for (const section of sections) {
    const parsed = parseNginxFile(section.path, section.text);
    if (parsed.kind === 'unknown') return parsed;
    files.push(parsed.file);
  }
  return { kind: 'dump', files };
}

interface Section {
  readonly path: string;
  readonly text: string;
}

function splitSections(text: string): Section[] {
  const sections: Section[] = [];
  let current: { path: string; start: number } | null = null;
  let offset = 0;
  // Walk line starts by indexOf: a regex over the whole text would not stay linear on garbage.
  while (offset <= text.length) {
    const nl = text.indexOf('\n', offset);
    const end = nl < 0 ? text.length : nl;
    if (text.startsWith('# configuration file ', offset)) {
      const header = FILE_HEADER.exec(text.slice(offset, end));
      if (header?.[1]) {
        if (current) sections.push({ path: current.path, text: text.slice(current.start, offset) });
        current = { path: header[1], start: nl < 0 ? text.length : nl + 1 };
      }
    }
    if (nl < 0) break;
    offset = nl + 1;
  }
  if (current) sections.push({ path: current.path, text: text.slice(current.start) });
  else if (text.trim() !== '') sections.push({ path: BARE_CONFIG, text });
  return sections;
}

/** Parses one configuration file into its directive tree (iteratively: nesting depth is input). */
export function parseNginxFile(
  path: string,
  text: string,
): { kind: 'file'; file: NginxConfigFile } | Unknown {
  const tokens = tokenizeNginx(text);
  if (!tokens.ok) return unknown(`${path}:${tokens.line}: ${tokens.error}`);
  type Frame = { directives: NginxDirective[]; open: { name: string; args: string[]; line: number } | null };
  const stack: Frame[] = [{ directives: [], open: null }];
  let words: Extract<NginxToken, { type: 'word' }>[] = [];
  const where = (line: number) => `${path}:${line}`;

  for (const token of tokens.tokens) {
    const top = stack[stack.length - 1];
    if (!top) return unknown(`${path}: internal nesting error`);
    if (token.type === 'word') {
      words.push(token);
      continue;
    }
    const [head, ...args] = words;
    words = [];
    if (token.type === ';') {
      if (!head) return unknown(`${where(token.line)}: unexpected ";"`);
      top.directives.push({
        name: head.text,
        args: args.map((w) => w.text),
        block: null,
        file: path,
        line: head.line,
      });
    } else if (token.type === '{') {
      if (!head) return unknown(`${where(token.line)}: unexpected "{"`);
      stack.push({
        directives: [],
        open: { name: head.text, args: args.map((w) => w.text), line: head.line },
      });
    } else {
      if (head) return unknown(`${where(head.line)}: ${excerpt(head.text, 40)} is missing its ";"`);
      const done = stack.pop();
      const parent = stack[stack.length - 1];
      if (!done?.open || !parent) return unknown(`${where(token.line)}: unexpected "}"`);
      parent.directives.push({
        name: done.open.name,
        args: done.open.args,
        block: done.directives,
        file: path,
        line: done.open.line,
      });
    }
  }
  const [head] = words;
  if (head)
    return unknown(
      `${where(head.line)}: unexpected end of file after ${excerpt(head.text, 40)} (output cut short?)`,
    );
  const unclosed = stack[stack.length - 1]?.open;
  if (unclosed) {
    return unknown(`${where(unclosed.line)}: "${unclosed.name}" block never closed (output cut short?)`);
  }
  return { kind: 'file', file: { path, directives: stack[0]?.directives ?? [] } };
}

/** Work left for glob matching; shared across calls so a hostile dump cannot multiply it. */
export interface GlobBudget {
  steps: number;
}

/**
 * Shell-style glob match (`*`, `?`, `[…]`, `[!…]`) as nginx's include uses it; wildcards do not
 * cross `/`. Matched segment by segment with the two-pointer algorithm rather than via a
 * RegExp, so a pattern like `*a*a*a*…` cannot backtrack exponentially; with a budget, the
 * match gives up (false, budget at 0) once the budget is spent.
 */
export function globMatch(pattern: string, path: string, budget: GlobBudget = { steps: Infinity }): boolean {
  const ps = pattern.split('/');
  const ts = path.split('/');
  return ps.length === ts.length && ps.every((p, i) => segmentMatch(p, ts[i] ?? '', budget));
}

function segmentMatch(p: string, t: string, budget: GlobBudget): boolean {
  let pi = 0;
  let ti = 0;
  let starP = -1;
  let starT = 0;
  while (ti < t.length) {
    if (--budget.steps < 0) return false;
    const c = p[pi];
    const step =
      c === '?'
        ? pi + 1
        : c === '['
          ? classMatch(p, pi, t[ti] ?? '')
          : c === t[ti] && c !== '*'
            ? pi + 1
            : -1;
    if (c === '*') {
      starP = pi++;
      starT = ti;
    } else if (step > 0) {
      pi = step;
      ti++;
    } else if (starP >= 0) {
      pi = starP + 1;
      ti = ++starT;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/** Where the pattern continues if `[…]` at `at` matches `ch`; -1 if not. An unclosed `[` is literal. */
function classMatch(p: string, at: number, ch: string): number {
  let i = at + 1;
  const negate = p[i] === '!' || p[i] === '^';
  if (negate) i++;
  const close = p.indexOf(']', i + 1);
  if (close < 0) return ch === '[' ? at + 1 : -1;
  let hit = false;
  for (; i < close; i++) {
    const lo = p[i] ?? '';
    if (p[i + 1] === '-' && i + 2 < close) {
      const hi = p[i + 2] ?? '';
      if (lo <= ch && ch <= hi) hit = true;
      i += 2;
    } else if (lo === ch) hit = true;
  }
  return hit !== negate ? close + 1 : -1;
}
