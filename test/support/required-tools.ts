import { spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';

/** The first of `tools` not found on PATH (or /usr/sbin), or undefined when all are there. */
export function missingTool(tools: readonly string[]): string | undefined {
  return tools.find((tool) => {
    const found = spawnSync('sh', ['-c', 'command -v "$1" || test -x "/usr/sbin/$1"', 'sh', tool], {
      stdio: 'ignore',
    });
    return found.status !== 0;
  });
}

/**
 * describe() for tests that run outside programs (promtool, amtool, nginx). Where one is missing
 * the suite is skipped and says why; with OKOME_REQUIRE_LAB=1 (CI) that is a failing test, so CI
 * never passes without having run them.
 */
export function describeWithTools(
  name: string,
  tools: readonly string[],
  hint: string,
  body: () => void,
): void {
  const missing = missingTool(tools);
  describeUnless(
    name,
    missing === undefined ? undefined : { what: missing, why: `${missing} is not installed (${hint})` },
    body,
  );
}

/**
 * describe() that does not run where something it needs is missing (a tool, a browser): skipped
 * saying why, or, with OKOME_REQUIRE_LAB=1 (CI), a failing test that says why.
 */
export function describeUnless(
  name: string,
  missing: { readonly what: string; readonly why: string } | undefined,
  body: () => void,
): void {
  if (missing !== undefined) {
    const message = `suite "${name}" did not run: ${missing.why}`;
    if (process.env.OKOME_REQUIRE_LAB === '1') {
      describe(name, () => {
        it(`runs because OKOME_REQUIRE_LAB=1 requires ${missing.what}`, () => {
          throw new Error(message);
        });
      });
      return;
    }
    console.warn(`${message} (set OKOME_REQUIRE_LAB=1 to make this a failure)`);
  }
  describe.skipIf(missing !== undefined)(name, body);
}
