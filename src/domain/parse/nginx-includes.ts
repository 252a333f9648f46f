import {
  BARE_CONFIG,
  type GlobBudget,
  globMatch,
  type NginxConfigFile,
  type NginxDirective,
  type NginxDump,
} from './nginx-config.js';

export interface IncludeExpander {
  /**
   * The directives of one block with every `include` replaced, in place, by the included
   * files' top-level directives (recursively). Blocks inside are left for their own call.
   */
  expand(directives: readonly NginxDirective[]): NginxDirective[];
  /**
   * Files named by an include anywhere in the dump, in any context (also `stream`, `mail`…):
   * any other file besides the main one has no known context.
   */
  includedAnywhere(): ReadonlySet<string>;
  readonly warnings: readonly string[];
  /** Set when expansion stopped early: include nesting or total size beyond the limits. */
  readonly failure: string | null;
}

// A file included from many places is printed once but counts at each place; the budget keeps
// a crafted dump (A includes B twice, B includes C twice, …) from growing exponentially.
const MAX_EXPANDED = 500_000;
const MAX_INCLUDE_DEPTH = 32;
const MAX_GLOB_STEPS = 2_000_000;
const GLOB = /[*?[]/;

export function createIncludeExpander(dump: NginxDump): IncludeExpander {
  const files = dump.files;
  const byPath = new Map(files.map((f) => [f.path, f]));
  const main = files[0];
  const mainPath = main?.path ?? BARE_CONFIG;
  // Relative include paths are relative to the directory of the main file (nginx's conf prefix).
  const confDir = mainPath === BARE_CONFIG ? '' : mainPath.slice(0, mainPath.lastIndexOf('/'));
  const warnings: string[] = [];
  let spent = 0;
  let failure: string | null = null;
  const globBudget: GlobBudget = { steps: MAX_GLOB_STEPS };

  const resolved = new Map<string, NginxConfigFile[]>();
  const resolve = (pattern: string): NginxConfigFile[] => {
    let targets = resolved.get(pattern);
    if (targets === undefined) {
      targets = match(pattern);
      resolved.set(pattern, targets);
    }
    return targets;
  };
  const match = (pattern: string): NginxConfigFile[] => {
    const full = pattern.startsWith('/') || confDir === '' ? pattern : `${confDir}/${pattern}`;
    if (!GLOB.test(full)) {
      const file = byPath.get(full);
      return file ? [file] : [];
    }
    // glob(3) returns matches sorted, and nginx reads them in that order.
    const matches = files
      .filter((f) => globBudget.steps > 0 && globMatch(full, f.path, globBudget))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    if (globBudget.steps <= 0) failure ??= `include globs cost more than ${MAX_GLOB_STEPS} steps to match`;
    return matches;
  };

  const expandInto = (
    out: NginxDirective[],
    directives: readonly NginxDirective[],
    active: string[],
  ): void => {
    for (const d of directives) {
      if (failure !== null) return;
      if (++spent > MAX_EXPANDED) {
        failure = `includes expand to more than ${MAX_EXPANDED} directives`;
        return;
      }
      const pattern = d.args[0];
      if (d.name !== 'include' || d.block !== null || pattern === undefined || d.args.length !== 1) {
        out.push(d);
        continue;
      }
      const targets = resolve(pattern);
      if (targets.length === 0 && !GLOB.test(pattern)) {
        warnings.push(`${d.file}:${d.line}: include ${pattern} names no file in the dump`);
      }
      for (const target of targets) {
        if (active.includes(target.path)) {
          warnings.push(`${d.file}:${d.line}: include loop through ${target.path}`);
          continue;
        }
        if (active.length >= MAX_INCLUDE_DEPTH) {
          failure = `includes nested deeper than ${MAX_INCLUDE_DEPTH} files at ${d.file}:${d.line}`;
          return;
        }
        active.push(target.path);
        expandInto(out, target.directives, active);
        active.pop();
      }
    }
  };

  return {
    expand(directives) {
      const out: NginxDirective[] = [];
      expandInto(out, directives, []);
      return out;
    },
    includedAnywhere() {
      const included = new Set<string>([mainPath]);
      for (const file of files) {
        // Iterative: nesting depth comes from the input.
        const stack: NginxDirective[] = [...file.directives];
        for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
          if (d.block) {
            for (const inner of d.block) stack.push(inner); // no spread: blocks can be huge
          } else if (d.name === 'include' && d.args[0] !== undefined) {
            for (const target of resolve(d.args[0])) included.add(target.path);
          }
        }
      }
      return included;
    },
    warnings,
    get failure() {
      return failure;
    },
  };
}
